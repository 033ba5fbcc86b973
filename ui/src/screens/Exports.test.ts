import { render, screen } from "@testing-library/svelte";
import { describe, expect, it } from "vitest";
import Exports from "./Exports.svelte";

describe("Exports", () => {
  it("says honestly that exports are coming, with no buttons that do nothing", () => {
    render(Exports);
    expect(screen.getByTestId("exports-placeholder")).toHaveTextContent(
      "Exports are coming soon: choose columns and save customers to a CSV or Excel file.",
    );
    expect(screen.queryAllByRole("button")).toHaveLength(0);
  });
});

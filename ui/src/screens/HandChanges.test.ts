import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../test/mock-backend"));
import * as backend from "../test/mock-backend";
import { formatDateTime } from "$lib/format";
import { decision, handOutcome } from "../test/hand-fixtures";
import HandChanges from "./HandChanges.svelte";

beforeEach(() => backend.resetBackend());

describe("Changes made by hand", () => {
  it("says in plain words that there are none yet", async () => {
    backend.listDecisions.mockResolvedValue([]);
    render(HandChanges);
    expect(await screen.findByTestId("changes-empty")).toHaveTextContent(
      "No changes made by hand yet. When you merge two customers or separate a record on a customer's page, it is listed here and can be undone.",
    );
  });

  it("lists each change newest first with who made it and when; undone ones say so and offer no Undo", async () => {
    backend.listDecisions.mockResolvedValue([
      decision({ id: 1, made_at: "2026-03-01T09:00:00Z", undone_at: "2026-03-02T09:00:00Z", undone_by: "Back office" }),
      decision({ id: 2, kind: "split", made_at: "2026-03-03T10:15:00Z", summary: "Vagaro customer V7 is a person of its own", people: [12] }),
    ]);
    render(HandChanges);
    const rows = await screen.findAllByTestId("decision-row");
    expect(rows.map((r) => within(r).getByTestId("decision-summary").textContent)).toEqual([
      "Vagaro customer V7 is a person of its own",
      "Tiquo customer cus_123 and Vagaro customer V7 are the same person",
    ]);
    expect(rows[0]).toHaveTextContent("Separated");
    expect(within(rows[0]!).getByTestId("decision-made")).toHaveTextContent(`By Front desk · ${formatDateTime("2026-03-03T10:15:00Z")}`);
    expect(within(rows[0]!).getByTestId("undo-decision")).toBeInTheDocument();
    expect(within(rows[0]!).getByTestId("decision-person")).toHaveAttribute("href", "#/customers/12");
    expect(rows[1]).toHaveTextContent("Merged");
    expect(within(rows[1]!).getByTestId("decision-undone")).toHaveTextContent(
      `Undone by Back office · ${formatDateTime("2026-03-02T09:00:00Z")}`,
    );
    expect(within(rows[1]!).queryByTestId("undo-decision")).not.toBeInTheDocument();
  });

  it("undoes a change and shows it undone", async () => {
    const user = userEvent.setup();
    backend.listDecisions.mockResolvedValue([decision()]);
    backend.undoDecision.mockResolvedValue(handOutcome({ relay: { state: "shared" } }));
    render(HandChanges);
    const undo = await screen.findByTestId("undo-decision");
    backend.listDecisions.mockResolvedValue([decision({ undone_at: "2026-03-04T09:00:00Z", undone_by: "Front desk" })]);
    await user.click(undo);
    expect(backend.undoDecision).toHaveBeenCalledWith(1);
    expect(await screen.findByTestId("undo-note")).toHaveTextContent(
      "Undone. These records are shown apart again. Every desk joined to the relay shows this too.",
    );
    await waitFor(() => expect(screen.getByTestId("decision-undone")).toBeInTheDocument());
    expect(screen.queryByTestId("undo-decision")).not.toBeInTheDocument();
  });

  it("says why an undo failed", async () => {
    const user = userEvent.setup();
    backend.listDecisions.mockResolvedValue([decision()]);
    backend.undoDecision.mockRejectedValue({ code: "not_found", message: "No change made by hand with number 1." });
    render(HandChanges);
    await user.click(await screen.findByTestId("undo-decision"));
    expect(await screen.findByTestId("undo-note")).toHaveTextContent("Couldn't undo this: No change made by hand with number 1.");
  });
});

import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../../test/mock-backend"));
import * as backend from "../../test/mock-backend";
import type { PhoneSettingsView, RereadSummary } from "$lib/backend";
import CustomersSection, { countryChoices } from "./CustomersSection.svelte";

const COUNTRIES = [
  { code: "US", calling_code: 1 },
  { code: "GB", calling_code: 44 },
  { code: "BR", calling_code: 55 },
];

function phoneSettings(overrides: Partial<PhoneSettingsView> = {}): PhoneSettingsView {
  return { default_country: null, countries: COUNTRIES, rereading: false, ...overrides };
}

beforeEach(() => {
  backend.resetBackend();
  backend.listBusinesses.mockResolvedValue([]);
});

describe("Settings → Customers", () => {
  it("names countries in plain words with their calling codes, sorted by name", () => {
    expect(countryChoices(COUNTRIES).map((c) => c.label)).toEqual([
      "Brazil (+55)",
      "United Kingdom (+44)",
      "United States (+1)",
    ]);
  });

  it("sets the country and shows the re-reading of earlier numbers as it goes", async () => {
    const user = userEvent.setup();
    backend.getPhoneSettings.mockResolvedValue(phoneSettings());
    let finish!: (summary: RereadSummary) => void;
    backend.setDefaultCountry.mockReturnValue(new Promise<RereadSummary>((resolve) => (finish = resolve)));
    render(CustomersSection);
    const select = await screen.findByTestId("default-country");
    expect(select).toHaveDisplayValue("Not set");
    expect(screen.getByTestId("save-default-country")).toBeDisabled();
    expect(screen.getByTestId("customers-settings")).toHaveTextContent("Changing it reads earlier customers' numbers again");

    await user.selectOptions(select, "GB");
    await user.click(screen.getByTestId("save-default-country"));
    expect(backend.setDefaultCountry).toHaveBeenCalledWith("GB");
    expect(await screen.findByTestId("reread-progress")).toHaveTextContent("Reading phone numbers again");
    expect(select).toBeDisabled();

    await waitFor(() => expect(backend.onPhoneReread).toHaveBeenCalled());
    backend.emitReread({ done: 500, total: 1200, finished: false });
    await waitFor(() =>
      expect(screen.getByTestId("reread-progress")).toHaveTextContent("500 of 1,200 customer records"),
    );
    const bar = within(screen.getByTestId("reread-progress")).getByRole("progressbar");
    expect(bar).toHaveAttribute("value", "500");
    expect(bar).toHaveAttribute("max", "1200");

    backend.emitReread({ done: 1200, total: 1200, finished: true });
    finish({ default_country: "GB", records: 1200, people_changed: [3, 4, 9] });
    expect(await screen.findByTestId("reread-result")).toHaveTextContent(
      "Done. Read the numbers of 1,200 customer records again; 3 customers changed.",
    );
    expect(select).not.toBeDisabled();
    expect(screen.getByTestId("save-default-country")).toBeDisabled();
  });

  it("says why a change was refused", async () => {
    const user = userEvent.setup();
    backend.getPhoneSettings.mockResolvedValue(phoneSettings({ default_country: "US" }));
    backend.setDefaultCountry.mockRejectedValue({
      code: "invalid_input",
      message: "Clientele is still reading phone numbers again after the last change.",
    });
    render(CustomersSection);
    const select = await screen.findByTestId("default-country");
    expect(select).toHaveDisplayValue("United States (+1)");
    await user.selectOptions(select, "BR");
    await user.click(screen.getByTestId("save-default-country"));
    expect(await screen.findByTestId("default-country-error")).toHaveTextContent("still reading phone numbers");
  });

  it("lets staff name Vagaro's businesses", async () => {
    const user = userEvent.setup();
    backend.getPhoneSettings.mockResolvedValue(phoneSettings());
    backend.listBusinesses.mockResolvedValue([
      { provider: "vagaro", id: "biz-uptown", name: "Salon Uptown", customers: 12 },
      { provider: "vagaro", id: "U2FsdGVkX18z", name: null, customers: 3 },
    ]);
    backend.nameBusiness.mockResolvedValue(undefined);
    render(CustomersSection);
    const inputs = await screen.findAllByTestId("business-name");
    expect(inputs[0]).toHaveValue("Salon Uptown");
    expect(screen.getByTestId("business-names")).toHaveTextContent("12 customers");
    await user.type(inputs[1]!, "Downtown");
    await user.click(screen.getAllByTestId("save-business")[1]!);
    expect(backend.nameBusiness).toHaveBeenCalledWith("vagaro", "U2FsdGVkX18z", "Downtown");
    expect(await screen.findByText("Saved.")).toBeInTheDocument();
  });

  it("shows no business list when Vagaro has sent none", async () => {
    backend.getPhoneSettings.mockResolvedValue(phoneSettings());
    render(CustomersSection);
    await screen.findByTestId("default-country");
    expect(backend.listBusinesses).toHaveBeenCalledWith("vagaro");
    expect(screen.queryByTestId("business-names")).not.toBeInTheDocument();
  });
});

import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../test/mock-backend"));
import * as backend from "../test/mock-backend";
import { formatDateTime } from "$lib/format";
import { personDetail } from "../test/fixtures";
import type { ProfileFieldView } from "$lib/backend";
import Person from "./Person.svelte";

beforeEach(() => backend.resetBackend());

describe("Person page", () => {
  it("shows the timeline newest first, as sentences with provider and local time", async () => {
    backend.personDetail.mockResolvedValue(personDetail());
    render(Person, { id: 7 });
    expect(await screen.findByTestId("person-name")).toHaveTextContent("Ana Silva");
    expect(backend.personDetail).toHaveBeenCalledWith(7);

    const entries = screen.getAllByTestId("timeline-entry");
    expect(entries.map((e) => e.textContent?.replace(/\s+/g, " ").trim())).toEqual([
      `▸ Email changed from ana@example.com to ana.new@example.com · Tiquo · ${formatDateTime("2024-01-20T15:00:00Z")}`,
      `▸ Moved up from Bronze to Silver (2,500 points) · Zupy · ${formatDateTime("2024-01-18T09:30:00Z")}`,
      `Joined through the booking portal · Tiquo · ${formatDateTime("2024-01-05T10:00:00Z")}`,
    ]);
  });

  it("expands a line to show old → new for each change", async () => {
    const user = userEvent.setup();
    backend.personDetail.mockResolvedValue(personDetail());
    render(Person, { id: 7 });
    const first = (await screen.findAllByTestId("timeline-entry"))[0]!;
    expect(within(first).queryByTestId("timeline-changes")).not.toBeInTheDocument();
    const toggle = within(first).getByRole("button");
    expect(toggle).toHaveAttribute("aria-expanded", "false");
    await user.click(toggle);
    expect(toggle).toHaveAttribute("aria-expanded", "true");
    const changes = within(first).getByTestId("timeline-changes");
    expect(changes).toHaveTextContent("Email");
    expect(changes).toHaveTextContent("ana@example.com → ana.new@example.com");
  });

  it("shows each profile value with the provider that said it and when", async () => {
    backend.personDetail.mockResolvedValue(personDetail());
    render(Person, { id: 7 });
    const fields = await screen.findAllByTestId("profile-field");
    expect(fields[1]).toHaveTextContent("Loyalty tier");
    expect(fields[1]).toHaveTextContent("Silver");
    expect(fields[1]).toHaveTextContent(`from Zupy · ${formatDateTime("2024-01-18T09:30:00Z")}`);
  });

  it("shows dates in the user's format, not as raw time stamps", async () => {
    const detail = personDetail();
    detail.profile.push({
      field: "created_at", label: "Customer since", value: "2023-07-10T08:50:00Z", value_kind: "date",
      provider_name: "Vagaro", at: "2024-01-18T09:30:00Z", group: "dates", phone_link: null,
    });
    backend.personDetail.mockResolvedValue(detail);
    render(Person, { id: 7 });
    const fields = await screen.findAllByTestId("profile-field");
    const created = fields[fields.length - 1];
    expect(created).toHaveTextContent(formatDateTime("2023-07-10T08:50:00Z"));
    expect(created).not.toHaveTextContent("2023-07-10T08:50:00Z");
  });

  it("shows the profile in the engine's order, in groups, with labels as written", async () => {
    const field = (f: string, label: string, value: string, group: ProfileFieldView["group"]): ProfileFieldView => ({
      field: f, label, value, value_kind: "text", provider_name: "Vagaro", at: "2024-01-18T09:30:00Z", group, phone_link: null,
    });
    backend.personDetail.mockResolvedValue(
      personDetail({
        profile: [
          field("first_name", "First name", "Ana", "main"),
          field("email", "Email", "ana@example.com", "main"),
          field("phone", "Phone", "+447700900123", "main"),
          field("city", "City", "Leeds", "address"),
          field("country_code", "Country code", "GB", "address"),
          field("created_at", "Customer since", "2021", "dates"),
        ],
      }),
    );
    render(Person, { id: 7 });
    const fields = await screen.findAllByTestId("profile-field");
    expect(fields.map((f) => f.getAttribute("data-field"))).toEqual([
      "first_name", "email", "phone", "city", "country_code", "created_at",
    ]);
    // Sentence case as the engine wrote it: no capitals added by the screen.
    expect(within(fields[4]!).getByText("Country code")).not.toHaveStyle({ textTransform: "uppercase" });
    expect(screen.getAllByTestId("profile-group").map((g) => g.textContent)).toEqual(["Address", "Dates"]);
  });

  it("says next to a phone number why it links nobody, and what the customer had before", async () => {
    const detail = personDetail({ earlier_emails: ["ana.old@example.com"], earlier_phones: ["07911 123456"] });
    detail.profile.splice(1, 0, {
      field: "phone", label: "Phone", value: "+447700900123", value_kind: "text", provider_name: "Vagaro",
      at: "2024-01-18T09:30:00Z", group: "main", phone_link: { kind: "invalid", country: "GB" },
    });
    backend.personDetail.mockResolvedValue(detail);
    render(Person, { id: 7 });
    expect(await screen.findByTestId("phone-link-note")).toHaveTextContent(
      "Not linked to other records: this isn't a valid United Kingdom number.",
    );
    expect(screen.getByTestId("earlier-identifiers")).toHaveTextContent("ana.old@example.com, 07911 123456");
  });

  it("lets staff name a Vagaro business where its number appears", async () => {
    const user = userEvent.setup();
    backend.personDetail.mockResolvedValue(
      personDetail({ businesses: [{ provider: "vagaro", id: "U2FsdGVkX18z", name: null, customers: 0 }] }),
    );
    backend.nameBusiness.mockResolvedValue(undefined);
    render(Person, { id: 7 });
    const row = await screen.findByTestId("business-row");
    expect(row).toHaveTextContent("No name yet");
    await user.click(within(row).getByTestId("name-business"));
    backend.personDetail.mockResolvedValue(
      personDetail({ businesses: [{ provider: "vagaro", id: "U2FsdGVkX18z", name: "Salon Uptown", customers: 0 }] }),
    );
    await user.type(screen.getByTestId("business-name-input"), "Salon Uptown");
    await user.click(screen.getByTestId("save-business-name"));
    expect(backend.nameBusiness).toHaveBeenCalledWith("vagaro", "U2FsdGVkX18z", "Salon Uptown");
    await waitFor(() => expect(screen.getByTestId("business-row")).toHaveTextContent("Salon Uptown"));
    expect(backend.personDetail).toHaveBeenCalledTimes(2);
  });

  it("lists the linked records and why they were linked", async () => {
    backend.personDetail.mockResolvedValue(personDetail());
    render(Person, { id: 7 });
    const sources = await screen.findAllByTestId("source-row");
    expect(sources).toHaveLength(2);
    expect(sources[1]).toHaveTextContent("Zupy – loyalty");
    expect(sources[1]).toHaveTextContent("Why linked: Same email address: ana.new@example.com");
  });

  it("shows a Deleted badge for a deleted customer", async () => {
    backend.personDetail.mockResolvedValue(personDetail({ deleted: true }));
    render(Person, { id: 7 });
    expect(await screen.findByTestId("deleted-badge")).toHaveTextContent("Deleted");
  });

  it("reloads when a live update mentions this person, and only then", async () => {
    backend.personDetail.mockResolvedValue(personDetail());
    render(Person, { id: 7 });
    await screen.findByText("Ana Silva");
    await waitFor(() => expect(backend.liveListenerCount()).toBe(1));
    backend.emitLive({ deliveries: 1, people: [8, 9] });
    expect(backend.personDetail).toHaveBeenCalledTimes(1);

    const newer = personDetail();
    newer.timeline.push({
      occurred_at: "2024-02-01T08:00:00Z",
      provider: "plain",
      provider_name: "Plain",
      connection: "support",
      kind: "other",
      summary: "Marked as spam in Plain",
      changes: [],
    });
    backend.personDetail.mockResolvedValue(newer);
    backend.emitLive({ deliveries: 1, people: [7] });
    await waitFor(() => expect(screen.getAllByTestId("timeline-entry")[0]).toHaveTextContent("Marked as spam in Plain"));
  });

  it("says when the customer can't be found", async () => {
    backend.personDetail.mockRejectedValue({ code: "not_found", message: "No customer with number 99." });
    render(Person, { id: 99 });
    expect(await screen.findByText("This customer can't be found")).toBeInTheDocument();
    expect(screen.getByTestId("error-message")).toHaveTextContent("No customer with number 99.");
    expect(screen.getByTestId("copy-details")).toBeInTheDocument();
  });
});

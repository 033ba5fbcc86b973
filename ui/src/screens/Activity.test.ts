import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../test/mock-backend"));
import * as backend from "../test/mock-backend";
import { PROVIDERS, activityItem, deliveryDetail } from "../test/fixtures";
import Activity from "./Activity.svelte";

const refused = activityItem({
  kind: "rejection",
  id: 9,
  provider: "vagaro",
  provider_name: "Vagaro",
  status: null,
  summary: "Refused",
  reason: "Refused: the signature didn't match — the secret may have changed in Vagaro",
});

beforeEach(() => {
  backend.resetBackend();
  backend.listProviders.mockResolvedValue(PROVIDERS);
});

function lastQuery() {
  return backend.listActivity.mock.calls.at(-1)?.[0];
}

describe("Activity", () => {
  it("loads the last 7 days of everything by default", async () => {
    backend.listActivity.mockResolvedValue([activityItem()]);
    render(Activity);
    await screen.findByTestId("activity-row");
    expect(backend.listActivity).toHaveBeenCalledWith({
      kind: "all",
      provider: null,
      status: null,
      since_hours: 168,
      limit: 200,
    });
  });

  it("asks for exactly what the filters say", async () => {
    const user = userEvent.setup();
    backend.listActivity.mockResolvedValue([activityItem()]);
    render(Activity);
    await screen.findByTestId("activity-row");
    await screen.findByRole("option", { name: "Vagaro" });

    await user.click(within(screen.getByTestId("filter-kind-deliveries")).getByRole("radio"));
    await waitFor(() => expect(lastQuery()).toMatchObject({ kind: "deliveries" }));

    await user.selectOptions(screen.getByTestId("filter-provider"), "vagaro");
    await waitFor(() => expect(lastQuery()).toMatchObject({ kind: "deliveries", provider: "vagaro" }));

    await user.selectOptions(screen.getByTestId("filter-status"), "needs_attention");
    await waitFor(() => expect(lastQuery()).toMatchObject({ status: "needs_attention" }));

    await user.selectOptions(screen.getByTestId("filter-time"), "All time");
    await waitFor(() =>
      expect(lastQuery()).toEqual({
        kind: "deliveries",
        provider: "vagaro",
        status: "needs_attention",
        since_hours: null,
        limit: 200,
      }),
    );

    await user.selectOptions(screen.getByTestId("filter-time"), "Last 24 hours");
    await waitFor(() => expect(lastQuery()).toMatchObject({ since_hours: 24 }));

    // Refused requests have no status: the status filter is off for them.
    await user.click(within(screen.getByTestId("filter-kind-rejections")).getByRole("radio"));
    await waitFor(() => expect(lastQuery()).toMatchObject({ kind: "rejections", status: null }));
    expect(screen.getByTestId("filter-status")).toBeDisabled();
  });

  it("shows the plain reason on refused rows and 'Received twice, kept once' for duplicates", async () => {
    backend.listActivity.mockResolvedValue([activityItem({ duplicates: 1 }), refused]);
    render(Activity);
    const rows = await screen.findAllByTestId("activity-row");
    expect(rows[0]).toHaveTextContent("Received twice, kept once");
    expect(rows[0]).toHaveTextContent("Read");
    expect(rows[1]).toHaveTextContent("Refused");
    expect(rows[1]).toHaveTextContent("the signature didn't match — the secret may have changed in Vagaro");
  });

  it("names the customer on every row that was about one", async () => {
    backend.listActivity.mockResolvedValue([
      activityItem({ summary: "Added in Vagaro", provider_name: "Vagaro" }),
      activityItem({ id: 42, summary: "Test message: checked and kept, no customer created", status: "test", person_id: null, person_name: null }),
      activityItem({ id: 43, summary: "Deleted in Tiquo", person_id: null, person_name: "Unknown customer" }),
    ]);
    render(Activity);
    const rows = await screen.findAllByTestId("activity-row");
    expect(within(rows[0]!).getByTestId("activity-person")).toHaveTextContent("Ana Silva");
    expect(rows[0]!.textContent).toMatch(/Ana Silva\s*·\s*Added in Vagaro/);
    expect(within(rows[1]!).queryByTestId("activity-person")).not.toBeInTheDocument();
    expect(within(rows[2]!).getByTestId("activity-person")).toHaveTextContent("Unknown customer");
  });

  it("opens a detail panel: who it was about, what was checked, and the message only behind technical details", async () => {
    const user = userEvent.setup();
    backend.listActivity.mockResolvedValue([activityItem()]);
    backend.deliveryDetail.mockResolvedValue(deliveryDetail());
    render(Activity);
    await user.click(await screen.findByTestId("activity-row"));
    const panel = await screen.findByTestId("delivery-panel");
    expect(backend.deliveryDetail).toHaveBeenCalledWith(41);
    expect(await within(panel).findByTestId("verification")).toHaveTextContent("Checked: signed by Tiquo");
    const link = within(panel).getByTestId("delivery-person-link");
    expect(link).toHaveTextContent("Ana Silva");
    expect(link).toHaveAttribute("href", "#/customers/7");

    // The raw message is technical: inside the closed "Show technical details", with Copy details.
    const technical = within(panel).getByTestId("technical-details");
    expect(within(technical).getByText("Show technical details")).toBeInTheDocument();
    expect(technical).not.toHaveAttribute("open");
    const content = within(technical).getByTestId("message-content");
    expect(content).toHaveTextContent('"type": "customer.updated"');
    expect(content).not.toBeVisible();
    expect(technical).toHaveTextContent("x-tiquo-timestamp");
    await user.click(within(technical).getByText("Show technical details"));
    expect(technical).toHaveAttribute("open");
    expect(content).toBeVisible();

    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    await user.click(within(technical).getByTestId("copy-details"));
    expect(writeText).toHaveBeenCalledTimes(1);
    const copied: string = writeText.mock.calls[0]![0];
    for (const part of [
      "Clientele message 41",
      "Provider: Tiquo (tiquo)",
      "Connection: main",
      "Duplicate check key: tiquo:evt_123",
      "Security check: Checked: signed by Tiquo",
      "Customer: Ana Silva (7)",
      "x-tiquo-timestamp: 1705762800",
      '"type": "customer.updated"',
    ]) {
      expect(copied).toContain(part);
    }
    expect(await within(technical).findByTestId("copy-details")).toHaveTextContent("Copied");

    backend.reprocessDelivery.mockResolvedValue(deliveryDetail({ status: "processed" }));
    await user.click(within(panel).getByTestId("reprocess"));
    expect(backend.reprocessDelivery).toHaveBeenCalledWith(41);
    expect(await within(panel).findByTestId("reprocess-result")).toHaveTextContent("Read again.");
  });

  it("explains a message it couldn't read in plain words", async () => {
    const user = userEvent.setup();
    backend.listActivity.mockResolvedValue([
      activityItem({
        status: "needs_attention",
        summary: "The message was damaged or incomplete; it is kept and can be read again after an update",
        person_id: null,
        person_name: null,
        technical: "the message is not valid JSON: EOF while parsing a value at line 1 column 82",
      }),
    ]);
    backend.deliveryDetail.mockResolvedValue(
      deliveryDetail({
        status: "needs_attention",
        error: "the message is not valid JSON: EOF while parsing a value at line 1 column 82",
        error_plain: "The message was damaged or incomplete",
        events: [],
        people: [],
      }),
    );
    render(Activity);
    const row = await screen.findByTestId("activity-row");
    expect(row).toHaveTextContent("Couldn't read");
    expect(row).toHaveTextContent("The message was damaged or incomplete");
    // The list never shows what the parser said.
    expect(row).not.toHaveTextContent("EOF");
    await user.click(row);
    const status = await screen.findByTestId("delivery-status");
    expect(status).toHaveTextContent(
      "Couldn't read this message; it is kept and can be read again after an update",
    );
    expect(within(status).getByTestId("delivery-problem")).toHaveTextContent(
      "What went wrong: The message was damaged or incomplete.",
    );
    // The technical reason is one click away, not in the main text.
    expect(status).not.toHaveTextContent("EOF");
    expect(screen.getByTestId("delivery-error")).toHaveTextContent("EOF while parsing");
    expect(screen.getByTestId("delivery-error")).not.toBeVisible();
  });

  it("shows a refused request's reason in the panel without asking for a stored message", async () => {
    const user = userEvent.setup();
    backend.listActivity.mockResolvedValue([refused]);
    render(Activity);
    await user.click(await screen.findByTestId("activity-row"));
    expect(await screen.findByTestId("rejection-reason")).toHaveTextContent("the signature didn't match");
    expect(backend.deliveryDetail).not.toHaveBeenCalled();
  });

  it("keeps a refusal's technical side behind technical details", async () => {
    const user = userEvent.setup();
    backend.listActivity.mockResolvedValue([
      {
        ...refused,
        reason: "The signature sent with this message couldn't be read, so Clientele couldn't check that Vagaro sent it.",
        technical: "The signature could not be read: a webhook-signature entry isn't valid base64.",
      },
    ]);
    render(Activity);
    const row = await screen.findByTestId("activity-row");
    expect(row).toHaveTextContent("couldn't check that Vagaro sent it");
    expect(row).not.toHaveTextContent("base64");
    await user.click(row);
    const technical = await screen.findByTestId("refusal-technical");
    expect(technical).toHaveTextContent("base64");
    expect(technical).not.toBeVisible();
  });

  it("refreshes on a live update, without polling", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "setTimeout"] });
    try {
      backend.listActivity.mockResolvedValue([]);
      render(Activity);
      await vi.waitFor(() => expect(backend.listActivity).toHaveBeenCalledTimes(1));
      await vi.waitFor(() => expect(backend.liveListenerCount()).toBe(1));
      vi.advanceTimersByTime(60_000);
      expect(backend.listActivity).toHaveBeenCalledTimes(1);
      backend.listActivity.mockResolvedValue([activityItem({ summary: "Deleted in Tiquo" })]);
      backend.emitLive({ deliveries: 1 });
      await vi.waitFor(() => expect(backend.listActivity).toHaveBeenCalledTimes(2));
    } finally {
      vi.useRealTimers();
    }
    expect(await screen.findByText("Deleted in Tiquo")).toBeInTheDocument();
  });

  it("says when nothing has arrived, and shows errors with Copy details", async () => {
    backend.listActivity.mockResolvedValueOnce([]);
    const { unmount } = render(Activity);
    expect(await screen.findByTestId("activity-empty")).toHaveTextContent("Nothing has arrived in the last 7 days");
    unmount();

    backend.listActivity.mockRejectedValue({ code: "database_busy", message: "The database is busy. Try again in a moment." });
    render(Activity);
    expect(await screen.findByText("Couldn't show the activity")).toBeInTheDocument();
    expect(screen.getByTestId("error-message")).toHaveTextContent("The database is busy");
    expect(screen.getByTestId("copy-details")).toBeInTheDocument();
  });

  it("shows a message about a forgotten customer as a line without data, that opens nothing", async () => {
    const user = userEvent.setup();
    backend.listActivity.mockResolvedValue([
      activityItem({ kind: "withheld", id: 5, status: null, summary: "", person_id: null, person_name: null }),
    ]);
    render(Activity);
    const row = await screen.findByTestId("activity-row");
    expect(row).toHaveAttribute("data-kind", "withheld");
    expect(row).toHaveTextContent("Not kept");
    expect(row).toHaveTextContent("A message about a forgotten customer arrived and wasn't kept");
    expect(row.tagName).not.toBe("BUTTON");
    await user.click(row);
    expect(backend.deliveryDetail).not.toHaveBeenCalled();
  });

  it("opens an erased message without Re-process or content: only that it was erased", async () => {
    const user = userEvent.setup();
    backend.listActivity.mockResolvedValue([activityItem({ status: "erased", summary: "Forgotten: this message was about a customer who was forgotten", person_id: null, person_name: null })]);
    backend.deliveryDetail.mockResolvedValue(
      deliveryDetail({ status: "erased", verification: "", body_pretty: "", headers: [], people: [], events: [] }),
    );
    render(Activity);
    await user.click(await screen.findByTestId("activity-row"));
    expect(await screen.findByTestId("delivery-status")).toHaveTextContent("Erased: it was about a customer who was forgotten.");
    expect(screen.queryByTestId("reprocess")).not.toBeInTheDocument();
    expect(screen.queryByTestId("message-content")).not.toBeInTheDocument();
    expect(screen.getByTestId("message-erased")).toHaveTextContent("The message's content and headers were erased.");
  });
});

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

  it("opens a detail panel: what was checked, the message content, technical details, re-process", async () => {
    const user = userEvent.setup();
    backend.listActivity.mockResolvedValue([activityItem()]);
    backend.deliveryDetail.mockResolvedValue(deliveryDetail());
    render(Activity);
    await user.click(await screen.findByTestId("activity-row"));
    const panel = await screen.findByTestId("delivery-panel");
    expect(backend.deliveryDetail).toHaveBeenCalledWith(41);
    expect(await within(panel).findByTestId("verification")).toHaveTextContent("Checked: signed by Tiquo");
    expect(within(panel).getByText("Message content")).toBeInTheDocument();
    expect(within(panel).getByTestId("message-content")).toHaveTextContent('"type": "customer.updated"');
    const technical = within(panel).getByTestId("technical-details");
    expect(within(technical).getByText("Show technical details")).toBeInTheDocument();
    expect(technical).not.toHaveAttribute("open");
    expect(technical).toHaveTextContent("x-tiquo-timestamp");

    backend.reprocessDelivery.mockResolvedValue(deliveryDetail({ status: "processed" }));
    await user.click(within(panel).getByTestId("reprocess"));
    expect(backend.reprocessDelivery).toHaveBeenCalledWith(41);
    expect(await within(panel).findByTestId("reprocess-result")).toHaveTextContent("Read again.");
  });

  it("explains a message it couldn't read in plain words", async () => {
    const user = userEvent.setup();
    backend.listActivity.mockResolvedValue([activityItem({ status: "needs_attention" })]);
    backend.deliveryDetail.mockResolvedValue(
      deliveryDetail({ status: "needs_attention", error: "missing field `customer` at line 1", events: [] }),
    );
    render(Activity);
    const row = await screen.findByTestId("activity-row");
    expect(row).toHaveTextContent("Couldn't read");
    await user.click(row);
    const status = await screen.findByTestId("delivery-status");
    expect(status).toHaveTextContent(
      "Couldn't read this message; it is kept and can be read again after an update",
    );
    // The technical reason is one click away, not in the main text.
    expect(status).not.toHaveTextContent("missing field");
    expect(screen.getByTestId("delivery-error")).toHaveTextContent("missing field");
  });

  it("shows a refused request's reason in the panel without asking for a stored message", async () => {
    const user = userEvent.setup();
    backend.listActivity.mockResolvedValue([refused]);
    render(Activity);
    await user.click(await screen.findByTestId("activity-row"));
    expect(await screen.findByTestId("rejection-reason")).toHaveTextContent("the signature didn't match");
    expect(backend.deliveryDetail).not.toHaveBeenCalled();
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
});

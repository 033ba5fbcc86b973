import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../../test/mock-backend"));
import * as backend from "../../test/mock-backend";
import { formatDate, formatDateTime } from "$lib/format";
import { erasure, retention, suppression } from "../../test/hand-fixtures";
import PrivacySection from "./PrivacySection.svelte";

beforeEach(() => {
  backend.resetBackend();
  backend.getRetention.mockResolvedValue(retention());
  backend.erasureLog.mockResolvedValue([]);
  backend.listSuppressions.mockResolvedValue([]);
});

describe("Settings → Privacy", () => {
  it("is off by default and says so; empty log and list say so too", async () => {
    render(PrivacySection);
    expect(await screen.findByTestId("retention-now")).toHaveTextContent(
      "Off: Clientele keeps customers and refused requests until you forget them.",
    );
    expect(screen.getByTestId("retention-inactive-months")).toBeDisabled();
    expect(await screen.findByTestId("erasures-empty")).toHaveTextContent("Nothing has been forgotten yet.");
    expect(await screen.findByTestId("suppressions-empty")).toBeInTheDocument();
  });

  it("turns retention on with the months chosen, and shows it plainly", async () => {
    const user = userEvent.setup();
    backend.setRetention.mockResolvedValue(retention({ inactive_months: 18 }));
    render(PrivacySection);
    await user.click(await screen.findByTestId("retention-inactive-on"));
    const months = screen.getByTestId("retention-inactive-months");
    await user.clear(months);
    await user.type(months, "18");
    await user.click(screen.getByTestId("save-retention"));
    expect(backend.setRetention).toHaveBeenCalledWith(18, null);
    await waitFor(() =>
      expect(screen.getByTestId("retention-now")).toHaveTextContent("Customers with no activity for 18 months are forgotten."),
    );
    expect(screen.getByTestId("retention-note")).toHaveTextContent("Saved.");
  });

  it("refuses a number it can't use before asking the engine", async () => {
    const user = userEvent.setup();
    render(PrivacySection);
    await user.click(await screen.findByTestId("retention-rejections-on"));
    await user.clear(screen.getByTestId("retention-rejections-days"));
    await user.click(screen.getByTestId("save-retention"));
    expect(screen.getByTestId("retention-note")).toHaveTextContent("Choose a whole number of days, 1 or more.");
    expect(backend.setRetention).not.toHaveBeenCalled();
  });

  it("is read-only, with a sentence, when the relay holds the rules and this desk can't change them", async () => {
    backend.getRetention.mockResolvedValue(retention({ inactive_months: 24, held_by_relay: true, can_change: false }));
    render(PrivacySection);
    expect(await screen.findByTestId("retention-relay")).toHaveTextContent("can't be changed here");
    expect(screen.getByTestId("retention-now")).toHaveTextContent("Customers with no activity for 24 months are forgotten.");
    expect(screen.queryByTestId("save-retention")).not.toBeInTheDocument();
  });

  it("shows the erasure log with when, why, which computer and how many — no names", async () => {
    backend.erasureLog.mockResolvedValue([erasure(), erasure({ id: 2, reason: "retention", computer: "Back office", rejections: 0 })]);
    render(PrivacySection);
    const rows = await screen.findAllByTestId("erasure-row");
    expect(rows[0]).toHaveTextContent(formatDateTime("2026-03-03T11:00:00Z"));
    expect(rows[0]).toHaveTextContent("Asked to be forgotten");
    expect(rows[0]).toHaveTextContent("Front desk");
    expect(rows[0]).toHaveTextContent("1 customer, 3 records, 12 messages, 1 refused request");
    expect(rows[1]).toHaveTextContent("No activity for a long time");
  });

  it("stops forgetting a customer after saying what it means", async () => {
    const user = userEvent.setup();
    backend.listSuppressions.mockResolvedValue([suppression(), suppression({ forget_uid: "old", lifted_at: "2026-03-04T00:00:00Z" })]);
    backend.stopForgetting.mockResolvedValue({ state: "not_joined" });
    render(PrivacySection);
    const rows = await screen.findAllByTestId("suppression-row");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toHaveTextContent(`Forgotten on ${formatDate("2026-03-03T11:00:00Z")} · 3 records · 2 messages about them not kept since`);
    await user.click(within(rows[0]!).getByTestId("stop-forgetting"));
    expect(screen.getByTestId("stop-forgetting-dialog")).toHaveTextContent("What was forgotten stays forgotten.");
    backend.listSuppressions.mockResolvedValue([suppression({ lifted_at: "2026-03-05T00:00:00Z" })]);
    await user.click(screen.getByTestId("confirm-stop-forgetting"));
    expect(backend.stopForgetting).toHaveBeenCalledWith("a1b2");
    expect(await screen.findByTestId("stop-note")).toHaveTextContent("Stopped. Their next messages are kept again.");
    expect(screen.queryByTestId("suppression-row")).not.toBeInTheDocument();
  });
});

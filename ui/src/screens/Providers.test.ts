import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../test/mock-backend"));
import * as backend from "../test/mock-backend";
import { NOT_JOINED, PROVIDERS, connection, hoursAgo, relayStatus } from "../test/fixtures";
import Providers from "./Providers.svelte";

beforeEach(() => {
  backend.resetBackend();
  backend.listProviders.mockResolvedValue(PROVIDERS);
});

describe("Providers", () => {
  it("has an empty state that offers to connect one", async () => {
    backend.listConnections.mockResolvedValue([]);
    render(Providers);
    expect(
      await screen.findByText("No providers connected yet. Connect one — it takes about two minutes."),
    ).toBeInTheDocument();
    expect(screen.getByTestId("connect-provider")).toHaveTextContent("Connect a provider");
  });

  it("shows skeletons while loading", () => {
    backend.listConnections.mockReturnValue(new Promise(() => {}));
    render(Providers);
    expect(screen.getByTestId("providers-loading")).toBeInTheDocument();
  });

  it("shows each connection's health in plain words", async () => {
    backend.listConnections.mockResolvedValue([
      connection({
        health: {
          last_delivery_at: hoursAgo(3),
          deliveries_today: 12,
          rejections_today: 2,
          recent_rejections: [
            {
              received_at: hoursAgo(1),
              reason: "Refused: the signature didn't match — the secret may have changed in Vagaro",
              code: "signature_mismatch",
            },
          ],
          quiet_warning: "Nothing from Vagaro for 3 days — usually every few hours",
        },
      }),
    ]);
    render(Providers);
    const card = await screen.findByTestId("connection-card");
    expect(card).toHaveTextContent("Vagaro – main");
    expect(within(card).getByTestId("connection-health")).toHaveTextContent("Last message from Vagaro 3 hours ago");
    expect(card).toHaveTextContent("12 messages today");
    expect(card).toHaveTextContent("2 refused today");
    expect(within(card).getByTestId("recent-rejections")).toHaveTextContent(
      "the signature didn't match — the secret may have changed in Vagaro",
    );
    const warning = within(card).getByTestId("quiet-warning");
    expect(warning).toHaveTextContent("Nothing from Vagaro for 3 days — usually every few hours");
    expect(warning).toHaveClass("notice-warn");
    expect(within(card).getByTestId("connection-address")).toHaveTextContent(
      "http://127.0.0.1:8787/hooks/vagaro/main",
    );
    // No jargon in the main view.
    expect(card.textContent).not.toMatch(/HMAC|payload|webhook event|401/);
  });

  it("says 'Waiting for the first message' until a genuine one has arrived, then 'Connected'", async () => {
    const waiting = connection({
      health: { last_delivery_at: null, deliveries_today: 0, rejections_today: 0, recent_rejections: [], quiet_warning: null },
    });
    backend.listConnections.mockResolvedValue([waiting]);
    render(Providers);
    const card = await screen.findByTestId("connection-card");
    expect(within(card).getByTestId("waiting-badge")).toHaveTextContent("Waiting for the first message");
    expect(card).not.toHaveTextContent("Connected");
    expect(within(card).getByTestId("first-message-hint")).toHaveTextContent(
      "Send a test from Vagaro's webhook settings: its first message shows that it reaches Clientele.",
    );
    await waitFor(() => expect(backend.liveListenerCount()).toBe(1));

    backend.listConnections.mockResolvedValue([
      { ...waiting, health: { ...waiting.health, last_delivery_at: hoursAgo(0), deliveries_today: 1 } },
    ]);
    backend.emitLive({ deliveries: 1 });
    expect(await screen.findByTestId("connected-badge")).toHaveTextContent("Connected");
    expect(screen.queryByTestId("waiting-badge")).not.toBeInTheDocument();
    expect(screen.queryByTestId("first-message-hint")).not.toBeInTheDocument();
  });

  it("pauses and resumes", async () => {
    const user = userEvent.setup();
    backend.listConnections.mockResolvedValue([connection()]);
    backend.setConnectionPaused.mockResolvedValue(connection({ paused: true }));
    render(Providers);
    await user.click(await screen.findByTestId("toggle-pause"));
    expect(backend.setConnectionPaused).toHaveBeenCalledWith("vagaro", "main", true);
    expect(await screen.findByTestId("paused-badge")).toHaveTextContent("Paused");
    expect(screen.getByTestId("toggle-pause")).toHaveTextContent("Resume");
  });

  it("asks before removing, says the data is kept, then removes", async () => {
    const user = userEvent.setup();
    backend.listConnections.mockResolvedValue([connection()]);
    backend.removeConnection.mockResolvedValue(undefined);
    render(Providers);
    await user.click(await screen.findByTestId("remove-connection"));
    const dialog = screen.getByTestId("remove-dialog");
    expect(dialog).toHaveTextContent("Remove Vagaro – main?");
    expect(dialog).toHaveTextContent("Your customers and their history are kept.");
    expect(backend.removeConnection).not.toHaveBeenCalled();

    await user.keyboard("{Escape}");
    expect(screen.queryByTestId("remove-dialog")).not.toBeInTheDocument();
    expect(backend.removeConnection).not.toHaveBeenCalled();

    await user.click(screen.getByTestId("remove-connection"));
    await user.click(screen.getByTestId("confirm-remove"));
    expect(backend.removeConnection).toHaveBeenCalledWith("vagaro", "main");
    await waitFor(() => expect(screen.queryByTestId("connection-card")).not.toBeInTheDocument());
  });

  it("replaces a secret through a masked field that is cleared after saving", async () => {
    const user = userEvent.setup();
    backend.listConnections.mockResolvedValue([connection()]);
    backend.replaceSecret.mockResolvedValue(undefined);
    render(Providers);
    await waitFor(() => expect(screen.getByTestId("edit-secret")).toHaveTextContent("Replace verification token"));
    await user.click(screen.getByTestId("edit-secret"));
    const input = screen.getByTestId("secret-input") as HTMLInputElement;
    expect(input).toHaveAttribute("type", "password");
    expect(input).toHaveFocus();
    await user.type(input, "tok_new_123");
    await user.click(screen.getByTestId("save-secret"));
    expect(backend.replaceSecret).toHaveBeenCalledWith("vagaro", "main", "tok_new_123");
    expect(input.value).toBe("");
    await waitFor(() => expect(screen.queryByTestId("secret-dialog")).not.toBeInTheDocument());
    expect(screen.getByRole("status")).toHaveTextContent("New verification token saved in your keychain.");
  });

  it("shows the engine's message when an action fails", async () => {
    const user = userEvent.setup();
    backend.listConnections.mockResolvedValue([connection()]);
    backend.setConnectionPaused.mockRejectedValue({ code: "database_busy", message: "The database is busy. Try again in a moment." });
    render(Providers);
    await user.click(await screen.findByTestId("toggle-pause"));
    expect(await screen.findByTestId("connection-error")).toHaveTextContent("The database is busy");
  });

  it("shows an error state with Copy details when the list can't load", async () => {
    backend.listConnections.mockRejectedValue({ code: "database_open", message: "Clientele couldn't open its database." });
    render(Providers);
    expect(await screen.findByText("Couldn't show your providers")).toBeInTheDocument();
    expect(screen.getByTestId("error-message")).toHaveTextContent("Clientele couldn't open its database.");
    expect(screen.getByTestId("copy-details")).toBeInTheDocument();
  });

  it("refreshes health on a live update", async () => {
    backend.listConnections.mockResolvedValue([connection()]);
    render(Providers);
    await screen.findByTestId("connection-card");
    await waitFor(() => expect(backend.liveListenerCount()).toBe(1));
    backend.listConnections.mockResolvedValue([
      connection({ health: { ...connection().health, deliveries_today: 13 } }),
    ]);
    backend.emitLive({ deliveries: 1 });
    expect(await screen.findByText(/13 messages today/)).toBeInTheDocument();
  });

  describe("with a relay", () => {
    const fromRelay = connection({
      provider: "tiquo",
      provider_name: "Tiquo",
      name: "shop",
      via_relay: true,
      webhook_url: "https://relay.example.com/hooks/tiquo/shop",
    });

    it("says nothing about a relay when this computer isn't joined to one", async () => {
      backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
      backend.listConnections.mockResolvedValue([connection()]);
      render(Providers);
      await screen.findByTestId("connection-card");
      expect(screen.queryByTestId("providers-relay")).not.toBeInTheDocument();
      expect(screen.queryByTestId("relay-badge")).not.toBeInTheDocument();
    });

    it("says messages also arrive through the relay, and marks its connections with the relay's address", async () => {
      backend.getRelayStatus.mockResolvedValue(relayStatus());
      backend.listConnections.mockResolvedValue([connection(), fromRelay]);
      render(Providers);
      expect(await screen.findByTestId("providers-relay")).toHaveTextContent(
        "Messages also arrive through the relay at relay.example.com.",
      );
      expect(screen.getByTestId("providers-relay")).toHaveTextContent("managed by whoever looks after it");
      const [local, relayed] = await screen.findAllByTestId("connection-card");
      expect(within(local!).queryByTestId("relay-badge")).not.toBeInTheDocument();
      expect(within(relayed!).getByTestId("relay-badge")).toHaveTextContent("through the relay");
      expect(within(relayed!).getByTestId("connection-address")).toHaveTextContent(
        "https://relay.example.com/hooks/tiquo/shop",
      );
      // Its secret and its pausing live on the relay; removing it is for who manages the relay.
      expect(within(relayed!).queryByTestId("edit-secret")).not.toBeInTheDocument();
      expect(within(relayed!).queryByTestId("toggle-pause")).not.toBeInTheDocument();
      expect(within(relayed!).queryByTestId("remove-connection")).not.toBeInTheDocument();
      expect(within(local!).getByTestId("remove-connection")).toBeInTheDocument();
    });

    it("lets a computer that manages the relay remove the relay's connections, saying what that does", async () => {
      const user = userEvent.setup();
      backend.getRelayStatus.mockResolvedValue(relayStatus({ admin: true }));
      backend.listConnections.mockResolvedValue([fromRelay]);
      backend.removeConnection.mockResolvedValue(undefined);
      render(Providers);
      expect(await screen.findByTestId("providers-relay")).toHaveTextContent(
        "Connections you add here are added to the relay",
      );
      await user.click(await screen.findByTestId("remove-connection"));
      expect(screen.getByTestId("remove-dialog")).toHaveTextContent("for every computer that receives through it");
      await user.click(screen.getByTestId("confirm-remove"));
      expect(backend.removeConnection).toHaveBeenCalledWith("tiquo", "shop");
    });

    it("says in plain words when the relay couldn't be reached to remove one", async () => {
      const user = userEvent.setup();
      backend.getRelayStatus.mockResolvedValue(relayStatus({ admin: true }));
      backend.listConnections.mockResolvedValue([fromRelay]);
      backend.removeConnection.mockRejectedValue({
        code: "relay_unreachable",
        message: "Clientele couldn't reach the relay at https://relay.example.com/: it didn't answer in time",
      });
      render(Providers);
      await user.click(await screen.findByTestId("remove-connection"));
      await user.click(screen.getByTestId("confirm-remove"));
      expect(await screen.findByTestId("connection-error")).toHaveTextContent(
        "Couldn't reach the relay, so nothing was changed.",
      );
    });

    it("warns when the relay can't be reached, and follows the relay's status live", async () => {
      backend.getRelayStatus.mockResolvedValue(relayStatus());
      backend.listConnections.mockResolvedValue([fromRelay]);
      render(Providers);
      await screen.findByTestId("providers-relay");
      expect(screen.queryByTestId("providers-relay-trouble")).not.toBeInTheDocument();
      await waitFor(() => expect(backend.relayListenerCount()).toBe(1));
      expect(screen.getByTestId("connection-card")).toHaveTextContent("Connected");
      backend.emitRelay(relayStatus({ state: "unreachable", since: hoursAgo(1) }));
      expect(await screen.findByTestId("relay-state-badge")).toHaveTextContent("Waiting at the relay");
      backend.emitRelay(relayStatus({ state: "revoked" }));
      expect(await screen.findByTestId("providers-relay-trouble")).toHaveTextContent(
        "This computer's access was removed. See Settings",
      );
      expect(screen.getByTestId("relay-state-badge")).toHaveTextContent("Not arriving: access removed");
      expect(screen.getByTestId("connection-card")).not.toHaveTextContent("Connected");
    });

    it("after leaving the relay, says its connections no longer receive, and lets them be removed here", async () => {
      const user = userEvent.setup();
      backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
      backend.listConnections.mockResolvedValue([
        { ...fromRelay, webhook_url: "http://127.0.0.1:8787/hooks/tiquo/shop" },
      ]);
      backend.removeConnection.mockResolvedValue(undefined);
      render(Providers);
      const card = await screen.findByTestId("connection-card");
      expect(within(card).getByTestId("relay-state-badge")).toHaveTextContent("Not receiving: the relay was left");
      expect(within(card).getByTestId("relay-left-note")).toHaveTextContent("Its customers are kept");
      expect(within(card).queryByTestId("relay-badge")).not.toBeInTheDocument();
      // Its old address would mislead: none is offered.
      expect(within(card).queryByTestId("connection-address")).not.toBeInTheDocument();
      await user.click(within(card).getByTestId("remove-connection"));
      expect(screen.getByTestId("remove-dialog")).toHaveTextContent("nothing changes at the relay");
      expect(screen.getByTestId("remove-dialog")).not.toHaveTextContent("keychain");
      await user.click(screen.getByTestId("confirm-remove"));
      expect(backend.removeConnection).toHaveBeenCalledWith("tiquo", "shop");
    });

    it("lists connections as before when the relay's status can't be read", async () => {
      backend.listConnections.mockResolvedValue([connection()]);
      render(Providers);
      expect(await screen.findByTestId("connection-card")).toHaveTextContent("Vagaro – main");
      expect(screen.queryByTestId("providers-relay")).not.toBeInTheDocument();
    });
  });

  describe("when the provider deletes a customer", () => {
    it("keeps their history by default, and saves forgetting them after N days", async () => {
      const user = userEvent.setup();
      backend.listConnections.mockResolvedValue([connection({ provider: "tiquo", provider_name: "Tiquo" })]);
      backend.setForgetDeleted.mockResolvedValue(undefined);
      render(Providers);
      const card = await screen.findByTestId("connection-card");
      const choice = within(card).getByTestId("forget-deleted-choice");
      expect(within(card).getByTestId("forget-deleted")).toHaveTextContent("When Tiquo deletes a customer");
      expect(choice).toHaveValue("keep");
      expect(within(card).queryByTestId("save-forget-deleted")).not.toBeInTheDocument();
      await user.selectOptions(choice, "forget");
      const days = within(card).getByTestId("forget-deleted-days");
      await user.clear(days);
      await user.type(days, "14");
      await user.click(within(card).getByTestId("save-forget-deleted"));
      expect(backend.setForgetDeleted).toHaveBeenCalledWith("tiquo", "main", 14);
      expect(await within(card).findByTestId("forget-deleted-note")).toHaveTextContent(
        "Saved. Forget them 14 days after Tiquo deletes them.",
      );
    });

    it("shows the choice already made, and can go back to keeping their history", async () => {
      const user = userEvent.setup();
      backend.listConnections.mockResolvedValue([connection({ forget_deleted_after_days: 30 })]);
      backend.setForgetDeleted.mockResolvedValue(undefined);
      render(Providers);
      const card = await screen.findByTestId("connection-card");
      expect(within(card).getByTestId("forget-deleted-choice")).toHaveValue("forget");
      expect(within(card).getByTestId("forget-deleted-days")).toHaveValue(30);
      await user.selectOptions(within(card).getByTestId("forget-deleted-choice"), "keep");
      await user.click(within(card).getByTestId("save-forget-deleted"));
      expect(backend.setForgetDeleted).toHaveBeenCalledWith("vagaro", "main", null);
    });
  });
});

import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../../test/mock-backend"));
import * as backend from "../../test/mock-backend";
import { NOT_JOINED, relayStatus } from "../../test/fixtures";
import RelaySection from "./RelaySection.svelte";

beforeEach(() => backend.resetBackend());

/** Words the window never shows a person. */
const JARGON = /\b(token|cursor|tls|webhook|http 4\d\d|401|403)\b/i;

function minutesAgo(minutes: number): string {
  return new Date(Date.now() - minutes * 60_000).toISOString();
}

async function fillAndJoin(address: string, code: string, name?: string) {
  const user = userEvent.setup();
  await user.type(await screen.findByTestId("relay-address"), address);
  await user.type(screen.getByTestId("relay-code"), code);
  if (name) await user.type(screen.getByTestId("relay-name"), name);
  await user.click(screen.getByTestId("relay-join"));
  return user;
}

describe("Receive from the internet, not joined", () => {
  it("explains in plain words why a relay is needed, and asks for the address and the code", async () => {
    backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
    render(RelaySection);
    const why = await screen.findByTestId("relay-why");
    expect(why).toHaveTextContent("can't reach this computer");
    expect(why).toHaveTextContent("sleeps");
    expect(why).toHaveTextContent("always on");
    expect(why).toHaveTextContent("Whoever looks after your computers sets it up once");
    expect(screen.getByLabelText("Relay address")).toBeInTheDocument();
    expect(screen.getByLabelText("Pairing code")).toBeInTheDocument();
    expect(screen.getByLabelText(/Name for this computer/)).toBeInTheDocument();
    expect(screen.getByTestId("relay-join")).toHaveTextContent("Join the relay");
    expect(screen.getByTestId("relay-section").textContent).not.toMatch(JARGON);
  });

  it("joins with the address (https:// added), the code and the name, showing progress, then the link", async () => {
    backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
    let answer: (s: unknown) => void = () => {};
    backend.joinRelay.mockReturnValue(new Promise((resolve) => (answer = resolve)));
    render(RelaySection);
    await fillAndJoin("relay.example.com", "k7qf-2mqd", "Front desk");

    expect(backend.joinRelay).toHaveBeenCalledWith("https://relay.example.com", "k7qf-2mqd", "Front desk");
    expect(screen.getByTestId("relay-join")).toHaveTextContent("Joining…");
    expect(screen.getByTestId("relay-join")).toBeDisabled();
    expect(screen.getByTestId("relay-joining")).toHaveTextContent("Contacting the relay at relay.example.com");

    answer(relayStatus({ state: "connecting", name: "Front desk" }));
    expect(await screen.findByTestId("relay-status")).toHaveTextContent("Connecting to relay.example.com");
    expect(screen.getByTestId("relay-notice")).toHaveTextContent(
      "This computer now receives messages through relay.example.com.",
    );
    expect(screen.getByTestId("relay-computer-name")).toHaveTextContent("Front desk");
  });

  it("leaves the name out when none is typed", async () => {
    backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
    backend.joinRelay.mockResolvedValue(relayStatus());
    render(RelaySection);
    await fillAndJoin("https://relay.example.com/", "K7QF-2MQD");
    expect(backend.joinRelay).toHaveBeenCalledWith("https://relay.example.com", "K7QF-2MQD", null);
  });

  it("says what is missing before contacting anything", async () => {
    const user = userEvent.setup();
    backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
    render(RelaySection);
    await user.click(await screen.findByTestId("relay-join"));
    expect(screen.getByText("Type the relay's address, for example https://relay.example.com.")).toBeInTheDocument();
    expect(screen.getByText("Type the pairing code, for example K7QF-2MQD.")).toBeInTheDocument();
    await user.type(screen.getByTestId("relay-address"), "not an address");
    await user.click(screen.getByTestId("relay-join"));
    expect(screen.getByTestId("relay-address")).toHaveAttribute("aria-invalid", "true");
    expect(backend.joinRelay).not.toHaveBeenCalled();
  });

  it.each([
    [
      "relay_unreachable",
      "Clientele couldn't reach the relay at https://relay.example.com/: nothing answered at that address",
      "Couldn't reach the relay at relay.example.com.",
      "Check the address and that this computer is online.",
    ],
    [
      "relay_untrusted",
      "The relay at https://relay.example.com/ didn't prove who it is: its certificate isn't trusted (invalid peer certificate: UnknownIssuer). If the relay uses its own certificate, join with --ca-cert.",
      "couldn't prove that it is the real one",
      "security settings",
    ],
    [
      "not_a_relay",
      "The address https://relay.example.com/ answered, but not like a Clientele relay (HTTP 404). Check the address.",
      "Something answered at relay.example.com, but it isn't a Clientele relay.",
      "Check the address with whoever looks after the relay.",
    ],
    [
      "relay_refused",
      "That code was already used. Ask for a new one.",
      "That code was already used. Ask for a new one.",
      "Ask whoever looks after the relay for a new pairing code",
    ],
    [
      "invalid_input",
      "That code has a typo: check it and type it again.",
      "That code has a typo: check it and type it again.",
      "Check what you typed and try again.",
    ],
  ])("says plainly what went wrong when joining fails with %s", async (code, message, said, advice) => {
    backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
    backend.joinRelay.mockRejectedValue({ code, message });
    render(RelaySection);
    await fillAndJoin("relay.example.com", "K7QF-2MQD");
    const error = await screen.findByTestId("relay-join-error");
    expect(error).toHaveTextContent(said);
    expect(error).toHaveTextContent(advice);
    expect(error.textContent).not.toMatch(/--ca-cert|TLS|token/i);
    expect(within(error).getByTestId("copy-relay-details")).toHaveTextContent("Copy details");
    // Still on the form, with what was typed, to try again.
    expect(screen.getByTestId("relay-address")).toHaveValue("relay.example.com");
    expect(screen.getByTestId("relay-join")).toBeEnabled();
  });

  it("shows a plain error with Try again when the status can't be read", async () => {
    const user = userEvent.setup();
    backend.getRelayStatus.mockRejectedValueOnce({ code: "database_busy", message: "The database is busy." });
    render(RelaySection);
    const error = await screen.findByTestId("relay-load-error");
    expect(error).toHaveTextContent("The database is busy.");
    backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
    await user.click(within(error).getByText("Try again"));
    expect(await screen.findByTestId("relay-why")).toBeInTheDocument();
  });
});

describe("Receive from the internet, joined", () => {
  it("says it is connected, when the last message came, the name and whether it manages connections", async () => {
    backend.getRelayStatus.mockResolvedValue(
      relayStatus({ last_delivery_at: minutesAgo(2), received: 14, admin: true }),
    );
    render(RelaySection);
    expect(await screen.findByTestId("relay-status")).toHaveTextContent(
      "Connected to relay.example.com — last message 2 minutes ago",
    );
    expect(screen.getByTestId("relay-url")).toHaveTextContent("https://relay.example.com");
    expect(screen.getByTestId("relay-computer-name")).toHaveTextContent("front-desk");
    expect(screen.getByTestId("relay-admin")).toHaveTextContent("may add and remove the relay's connections");
    expect(screen.getByTestId("relay-received")).toHaveTextContent("14 messages");
    expect(screen.queryByTestId("relay-join-form")).not.toBeInTheDocument();
    expect(screen.getByTestId("relay-section").textContent).not.toMatch(JARGON);
  });

  it("says when nothing has come through yet, and who manages the relay's connections", async () => {
    backend.getRelayStatus.mockResolvedValue(relayStatus());
    render(RelaySection);
    expect(await screen.findByTestId("relay-status")).toHaveTextContent("Connected to relay.example.com — no messages yet");
    expect(screen.getByTestId("relay-admin")).toHaveTextContent("Only whoever looks after the relay");
  });

  it("says since when the relay can't be reached, and that messages wait there", async () => {
    const since = new Date();
    since.setHours(9, 14, 0, 0);
    backend.getRelayStatus.mockResolvedValue(
      relayStatus({
        state: "unreachable",
        since: since.toISOString(),
        error: "Clientele couldn't reach the relay at https://relay.example.com/: nothing answered at that address",
      }),
    );
    render(RelaySection);
    const status = await screen.findByTestId("relay-status");
    expect(status).toHaveTextContent(
      /Can.t reach the relay since 0?9:14( AM)? — messages wait there and arrive when it.s back/,
    );
    const advice = screen.getByTestId("relay-advice");
    expect(advice).toHaveTextContent("Nothing is lost");
    expect(within(advice).getByText("Show technical details")).toBeInTheDocument();
  });

  it("says the access was removed and how to fix it", async () => {
    backend.getRelayStatus.mockResolvedValue(
      relayStatus({ state: "revoked", error: "This computer's access to the relay was removed." }),
    );
    render(RelaySection);
    expect(await screen.findByTestId("relay-status")).toHaveTextContent("This computer's access was removed");
    const advice = screen.getByTestId("relay-advice");
    expect(advice).toHaveTextContent("Ask whoever looks after the relay for a new pairing code");
    expect(advice).toHaveTextContent("Stop receiving through the relay");
    expect(advice).toHaveTextContent("Join again");
  });

  it("updates live from the engine's relay event", async () => {
    backend.getRelayStatus.mockResolvedValue(relayStatus({ state: "connecting" }));
    render(RelaySection);
    expect(await screen.findByTestId("relay-status")).toHaveTextContent("Connecting to relay.example.com");
    await waitFor(() => expect(backend.relayListenerCount()).toBe(1));

    backend.emitRelay(relayStatus({ last_delivery_at: minutesAgo(0), received: 1 }));
    await waitFor(() =>
      expect(screen.getByTestId("relay-status")).toHaveTextContent("Connected to relay.example.com — last message just now"),
    );
    backend.emitRelay(relayStatus({ state: "revoked" }));
    await waitFor(() => expect(screen.getByTestId("relay-status")).toHaveTextContent("This computer's access was removed"));
    backend.emitRelay(NOT_JOINED);
    expect(await screen.findByTestId("relay-join-form")).toBeInTheDocument();
  });

  it("stops listening when the screen goes away", async () => {
    backend.getRelayStatus.mockResolvedValue(relayStatus());
    const { unmount } = render(RelaySection);
    await waitFor(() => expect(backend.relayListenerCount()).toBe(1));
    unmount();
    expect(backend.relayListenerCount()).toBe(0);
  });

  it("asks before it stops receiving through the relay, then shows the form again", async () => {
    const user = userEvent.setup();
    backend.getRelayStatus.mockResolvedValue(relayStatus());
    backend.leaveRelay.mockResolvedValue(NOT_JOINED);
    render(RelaySection);
    await user.click(await screen.findByTestId("relay-leave"));
    const dialog = screen.getByTestId("relay-leave-confirm");
    expect(dialog).toHaveTextContent("Stop receiving through the relay?");
    expect(dialog).toHaveTextContent("stay on this computer");
    expect(dialog).toHaveTextContent("new pairing code");

    await user.click(screen.getByTestId("relay-leave-cancel"));
    expect(backend.leaveRelay).not.toHaveBeenCalled();
    expect(screen.queryByTestId("relay-leave-confirm")).not.toBeInTheDocument();

    await user.click(screen.getByTestId("relay-leave"));
    await user.click(screen.getByTestId("relay-leave-confirm-button"));
    expect(backend.leaveRelay).toHaveBeenCalledTimes(1);
    expect(await screen.findByTestId("relay-join-form")).toBeInTheDocument();
    expect(screen.getByTestId("relay-notice")).toHaveTextContent("no longer receives through the relay");
    expect(screen.queryByTestId("relay-leave-confirm")).not.toBeInTheDocument();
  });

  it("keeps the dialog open and says why when leaving fails", async () => {
    const user = userEvent.setup();
    backend.getRelayStatus.mockResolvedValue(relayStatus());
    backend.leaveRelay.mockRejectedValue({ code: "database_busy", message: "The database is busy." });
    render(RelaySection);
    await user.click(await screen.findByTestId("relay-leave"));
    await user.click(screen.getByTestId("relay-leave-confirm-button"));
    expect(await screen.findByText("Couldn't stop: The database is busy.")).toBeInTheDocument();
    expect(screen.getByTestId("relay-status")).toHaveTextContent("Connected to relay.example.com");
  });
});

import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../test/mock-backend"));
import * as backend from "../test/mock-backend";
import { PROVIDERS, connection, relayStatus, settings } from "../test/fixtures";
import ConnectFlow from "./ConnectFlow.svelte";

const created = connection({
  provider: "tiquo",
  provider_name: "Tiquo",
  name: "main",
  webhook_url: "http://127.0.0.1:8787/hooks/tiquo/main",
  health: { last_delivery_at: null, deliveries_today: 0, rejections_today: 0, recent_rejections: [], quiet_warning: null },
});

beforeEach(() => {
  backend.resetBackend();
  backend.listProviders.mockResolvedValue(PROVIDERS);
  backend.listConnections.mockResolvedValue([connection()]); // Vagaro – main exists
  backend.getSettings.mockResolvedValue(settings());
});

function setup() {
  const user = userEvent.setup();
  const ondone = vi.fn();
  const oncancel = vi.fn();
  render(ConnectFlow, { ondone, oncancel });
  return { user, ondone, oncancel };
}

describe("Connect a provider", () => {
  it("walks through provider, name, address, secret and test", async () => {
    const { user, ondone } = setup();

    // 1. Pick the provider.
    await screen.findByTestId("connect-step-provider");
    await user.click(screen.getByTestId("provider-card-tiquo"));

    // 2. Name, with "main" suggested.
    const name = (await screen.findByTestId("connection-name")) as HTMLInputElement;
    expect(name.value).toBe("main");
    await user.click(screen.getByTestId("name-next"));

    // 3. The address, where to paste it, which events to tick; "webhook URL" mentioned once.
    const address = await screen.findByTestId("connect-step-address");
    expect(within(address).getByTestId("webhook-url")).toHaveTextContent("http://127.0.0.1:8787/hooks/tiquo/main");
    expect(within(address).getByTestId("copy-webhook-url")).toHaveTextContent("Copy");
    expect(within(address).getByTestId("where-to-paste")).toHaveTextContent("Settings → Webhooks → Add endpoint");
    expect(within(address).getByTestId("events-to-tick")).toHaveTextContent("customer.updated");
    expect(address.textContent?.match(/webhook URL/g)).toHaveLength(1);
    await user.click(screen.getByTestId("address-next"));

    // 4. The secret: masked, explained, cleared after submit.
    const step = await screen.findByTestId("connect-step-secret");
    expect(step).toHaveTextContent("Paste the signing secret from Tiquo");
    expect(step).toHaveTextContent("It goes into your computer's keychain and is never shown again.");
    const secret = screen.getByTestId("secret-input") as HTMLInputElement;
    expect(secret).toHaveAttribute("type", "password");
    await user.type(secret, "whsec_abc123");
    backend.addConnection.mockResolvedValue(created);
    await user.click(screen.getByTestId("save-secret"));
    expect(backend.addConnection).toHaveBeenCalledWith({ provider: "tiquo", name: "main", secret: "whsec_abc123" });

    // 5. Check it works: the test says what it proved, then the step waits for Tiquo.
    const test = await screen.findByTestId("connect-step-test");
    expect(test).toHaveTextContent("Tiquo – main is saved — check it works");
    expect(test).toHaveTextContent("Test messages show in Activity but never create customers.");
    expect(test).not.toHaveTextContent("It works");
    const proved =
      "Clientele checked a sample message for Tiquo 'main' with the signing secret you pasted, at this computer's address. This doesn't show that Tiquo can reach this computer yet.";
    backend.sendTestEvent.mockResolvedValue({ ok: true, message: proved });
    await user.click(screen.getByTestId("send-test"));
    expect(backend.sendTestEvent).toHaveBeenCalledWith("tiquo", "main");
    const result = await screen.findByTestId("test-result");
    expect(result).toHaveTextContent(proved);
    // Not green: it isn't the proof yet.
    expect(result).not.toHaveClass("notice-ok");
    expect(screen.getByTestId("first-message-waiting")).toHaveTextContent(
      "Waiting for the first message from Tiquo — send a test from Tiquo's webhook settings.",
    );
    expect(screen.getByTestId("connect-done")).toHaveTextContent("Done — I'll send it later");
    await user.click(screen.getByTestId("connect-done"));
    expect(ondone).toHaveBeenCalled();
  });

  it("turns green when Tiquo's own first message arrives", async () => {
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await user.click(await screen.findByTestId("name-next"));
    await user.click(await screen.findByTestId("address-next"));
    await user.type(await screen.findByTestId("secret-input"), "whsec_abc");
    backend.addConnection.mockResolvedValue(created);
    backend.listConnections.mockResolvedValue([connection(), created]);
    await user.click(screen.getByTestId("save-secret"));
    await screen.findByTestId("first-message-waiting");
    await waitFor(() => expect(backend.liveListenerCount()).toBe(1));

    backend.listConnections.mockResolvedValue([
      connection(),
      { ...created, health: { ...created.health, last_delivery_at: new Date().toISOString(), deliveries_today: 1 } },
    ]);
    backend.emitLive({ deliveries: 1 });
    const arrived = await screen.findByTestId("first-message-arrived");
    expect(arrived).toHaveClass("notice-ok");
    expect(arrived).toHaveTextContent("The first message from Tiquo arrived");
    expect(arrived).toHaveTextContent("and was checked with the signing secret: Tiquo – main works.");
    expect(screen.queryByTestId("first-message-waiting")).not.toBeInTheDocument();
    expect(screen.getByTestId("connect-done")).toHaveTextContent(/^Done$/);
  });

  it("makes the name from what was typed, and shows it before saving", async () => {
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    const name = (await screen.findByTestId("connection-name")) as HTMLInputElement;
    await user.clear(name);
    await user.type(name, "Main Salon");
    expect(screen.getByTestId("connection-name-result")).toHaveTextContent("It will be saved as main-salon.");
    await user.click(screen.getByTestId("name-next"));
    expect(screen.queryByTestId("name-error")).not.toBeInTheDocument();
    expect(await screen.findByTestId("webhook-url")).toHaveTextContent("http://127.0.0.1:8787/hooks/tiquo/main-salon");
    await user.click(screen.getByTestId("address-next"));
    await user.type(await screen.findByTestId("secret-input"), "whsec_abc");
    backend.addConnection.mockResolvedValue({ ...created, name: "main-salon" });
    await user.click(screen.getByTestId("save-secret"));
    expect(backend.addConnection).toHaveBeenCalledWith({ provider: "tiquo", name: "main-salon", secret: "whsec_abc" });
  });

  it("clears 'paste the secret first' as soon as something is pasted", async () => {
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await user.click(await screen.findByTestId("name-next"));
    await user.click(await screen.findByTestId("address-next"));
    await user.click(await screen.findByTestId("save-secret"));
    expect(await screen.findByTestId("secret-error")).toHaveTextContent("Paste the signing secret from Tiquo first.");
    const secret = screen.getByTestId("secret-input");
    expect(secret).toHaveAttribute("aria-invalid", "true");
    await user.click(secret);
    await user.paste("whsec_abc");
    expect(screen.queryByTestId("secret-error")).not.toBeInTheDocument();
    expect(secret).not.toHaveAttribute("aria-invalid");
    expect(backend.addConnection).not.toHaveBeenCalled();
  });

  it("shows the fuller timeline's events beside the customer events", async () => {
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await user.click(await screen.findByTestId("name-next"));
    const address = await screen.findByTestId("connect-step-address");
    expect(within(address).getByTestId("timeline-events")).toHaveTextContent(
      "For a fuller timeline (what customers book, buy and earn), also tick: order.created, payment.succeeded, loyalty.points_earned.",
    );
  });

  it("moves the focus into each step as the flow goes on and back", async () => {
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await waitFor(() => expect(screen.getByTestId("connection-name")).toHaveFocus());
    await user.keyboard("{Enter}");
    await waitFor(() => expect(screen.getByTestId("address-next")).toHaveFocus());
    await user.click(screen.getByRole("button", { name: "Back" }));
    await waitFor(() => expect(screen.getByTestId("connection-name")).toHaveFocus());
    await user.click(screen.getByRole("button", { name: "Back" }));
    await waitFor(() => expect(screen.getByRole("heading", { name: "Which provider do you want to connect?" })).toHaveFocus());
    await user.click(screen.getByTestId("provider-card-tiquo"));
    await user.keyboard("{Enter}");
    await user.click(await screen.findByTestId("address-next"));
    await waitFor(() => expect(screen.getByTestId("secret-input")).toHaveFocus());
    backend.addConnection.mockResolvedValue(created);
    await user.keyboard("whsec_abc{Enter}");
    await waitFor(() => expect(screen.getByTestId("send-test")).toHaveFocus());
  });

  it("clears the secret field after a refused submit and shows why", async () => {
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await user.click(await screen.findByTestId("name-next"));
    await user.click(await screen.findByTestId("address-next"));
    const secret = (await screen.findByTestId("secret-input")) as HTMLInputElement;
    await user.type(secret, "wrong");
    backend.addConnection.mockRejectedValue({ code: "keychain_locked", message: "Your keychain is locked." });
    await user.click(screen.getByTestId("save-secret"));
    expect(await screen.findByTestId("secret-error")).toHaveTextContent("Your keychain is locked.");
    expect(secret.value).toBe("");
    // Not about the name: the flow stays on the secret.
    expect(screen.getByTestId("connect-step-secret")).toBeInTheDocument();
    expect(screen.queryByTestId("name-error")).not.toBeInTheDocument();
  });

  it("stays on the secret when a refusal only mentions a connection name", async () => {
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await user.click(await screen.findByTestId("name-next"));
    await user.click(await screen.findByTestId("address-next"));
    await user.type(await screen.findByTestId("secret-input"), "whsec_abc");
    backend.addConnection.mockRejectedValue({
      code: "keychain_ambiguous",
      message: "The system keychain holds more than one signing secret for Tiquo connection called 'main'.",
    });
    await user.click(screen.getByTestId("save-secret"));
    expect(await screen.findByTestId("secret-error")).toHaveTextContent("holds more than one signing secret");
    expect(screen.getByTestId("connect-step-secret")).toBeInTheDocument();
    expect(screen.queryByTestId("name-error")).not.toBeInTheDocument();
  });

  it("checks the name before going on", async () => {
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-vagaro"));
    const name = (await screen.findByTestId("connection-name")) as HTMLInputElement;
    // Vagaro already has "main", so another name is suggested.
    expect(name.value).toBe("main-2");

    await user.clear(name);
    await user.type(name, "!!!");
    await user.click(screen.getByTestId("name-next"));
    expect(screen.getByTestId("name-error")).toHaveTextContent("Use some letters or digits in the name");
    expect(name).toHaveAttribute("aria-invalid", "true");

    await user.clear(name);
    await user.type(name, "Main");
    await user.click(screen.getByTestId("name-next"));
    expect(screen.getByTestId("name-error")).toHaveTextContent("There is already a Vagaro connection called 'main'");
    expect(screen.queryByTestId("connect-step-address")).not.toBeInTheDocument();
  });

  it.each([
    ["connection_name_taken", "There is already a Tiquo connection called 'main'."],
    ["invalid_input", "'main' can't be used as a connection name."],
  ])("goes back to the name with the engine's message when it refuses the name (%s)", async (code, message) => {
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await user.click(await screen.findByTestId("name-next"));
    await user.click(await screen.findByTestId("address-next"));
    await user.type(await screen.findByTestId("secret-input"), "whsec_abc");
    backend.addConnection.mockRejectedValue({ code, message });
    await user.click(screen.getByTestId("save-secret"));
    expect(await screen.findByTestId("name-error")).toHaveTextContent(message);
    expect(screen.getByTestId("connect-step-name")).toBeInTheDocument();
    expect(screen.getByTestId("connection-name")).toHaveFocus();
    expect(screen.queryByTestId("secret-error")).not.toBeInTheDocument();
  });

  it("connects without a secret only after a clear warning, sending secret: null", async () => {
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await user.click(await screen.findByTestId("name-next"));
    await user.click(await screen.findByTestId("address-next"));
    await user.click(await screen.findByTestId("no-secret"));
    expect(screen.getByTestId("no-secret-warning")).toHaveTextContent(
      "Clientele can't tell a real message from Tiquo from a fake one",
    );
    expect(backend.addConnection).not.toHaveBeenCalled();
    backend.addConnection.mockResolvedValue({ ...created, requires_secret: false, secret_set: false });
    await user.click(screen.getByTestId("confirm-no-secret"));
    expect(backend.addConnection).toHaveBeenCalledWith({ provider: "tiquo", name: "main", secret: null });
    expect(await screen.findByTestId("connect-step-test")).toBeInTheDocument();
  });

  it("shows a failed test in plain words", async () => {
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await user.click(await screen.findByTestId("name-next"));
    await user.click(await screen.findByTestId("address-next"));
    await user.type(await screen.findByTestId("secret-input"), "whsec_abc");
    backend.addConnection.mockResolvedValue(created);
    await user.click(screen.getByTestId("save-secret"));
    backend.sendTestEvent.mockResolvedValue({ ok: false, message: "Clientele isn't receiving messages right now." });
    await user.click(await screen.findByTestId("send-test"));
    const result = await screen.findByTestId("test-result");
    expect(result).toHaveTextContent("Clientele isn't receiving messages right now.");
    expect(result).toHaveClass("notice-danger");
  });

  it("shows an error state when it can't start", async () => {
    backend.listProviders.mockRejectedValue({ code: "no_backend", message: "Clientele's engine isn't running." });
    setup();
    expect(await screen.findByText("Couldn't start connecting")).toBeInTheDocument();
    expect(screen.getByTestId("copy-details")).toBeInTheDocument();
  });

  it("on a computer that manages its relay, gives the relay's address and sends the secret there", async () => {
    backend.getRelayStatus.mockResolvedValue(relayStatus({ admin: true, public_url: "https://relay.example.com/" }));
    const { user, ondone } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await user.click(await screen.findByTestId("name-next"));

    const address = await screen.findByTestId("connect-step-address");
    expect(within(address).getByTestId("webhook-url")).toHaveTextContent("https://relay.example.com/hooks/tiquo/main");
    expect(within(address).getByTestId("address-relay-note")).toHaveTextContent("This is the relay's address");
    await user.click(screen.getByTestId("address-next"));

    const step = await screen.findByTestId("connect-step-secret");
    expect(within(step).getByTestId("secret-relay-note")).toHaveTextContent(
      "It goes to the relay, which keeps it locked away. It isn't kept on this computer",
    );
    expect(step).not.toHaveTextContent("keychain");
    await user.type(screen.getByTestId("secret-input"), "whsec_abc123");
    backend.addConnection.mockResolvedValue({
      ...created,
      via_relay: true,
      webhook_url: "https://relay.example.com/hooks/tiquo/main",
    });
    await user.click(screen.getByTestId("save-secret"));

    const test = await screen.findByTestId("connect-step-test");
    expect(within(test).getByTestId("relay-test-note")).toHaveTextContent(
      "The relay sends a sample message, as if it came from Tiquo, to its own public address",
    );
    expect(screen.queryByTestId("final-webhook-url")).not.toBeInTheDocument();
    const proved =
      "The relay received a sample message for Tiquo 'main' at its public address https://relay.example.com and checked it with the signing secret it keeps.";
    backend.sendTestEvent.mockResolvedValue({ ok: true, message: proved });
    await user.click(screen.getByTestId("send-test"));
    expect(backend.sendTestEvent).toHaveBeenCalledWith("tiquo", "main");
    expect(await screen.findByTestId("test-result")).toHaveTextContent(proved);
    expect(screen.getByTestId("first-message-waiting")).toHaveTextContent("Waiting for the first message from Tiquo");
    expect(test).toHaveTextContent("It shows that Tiquo reaches the relay with the right signing secret.");
    await user.click(screen.getByTestId("connect-done"));
    expect(ondone).toHaveBeenCalled();
  });

  it("on a computer joined without managing the relay, connects on this computer as before", async () => {
    backend.getRelayStatus.mockResolvedValue(relayStatus({ admin: false }));
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await user.click(await screen.findByTestId("name-next"));
    expect(await screen.findByTestId("webhook-url")).toHaveTextContent("http://127.0.0.1:8787/hooks/tiquo/main");
    expect(screen.queryByTestId("address-relay-note")).not.toBeInTheDocument();
  });

  it("says plainly when the relay refuses a new connection from this computer", async () => {
    backend.getRelayStatus.mockResolvedValue(relayStatus({ admin: true }));
    const { user } = setup();
    await user.click(await screen.findByTestId("provider-card-tiquo"));
    await user.click(await screen.findByTestId("name-next"));
    await user.click(await screen.findByTestId("address-next"));
    await user.type(await screen.findByTestId("secret-input"), "whsec_abc123");
    backend.addConnection.mockRejectedValue({
      code: "relay_not_admin",
      message: "This computer may not manage the relay's connections.",
    });
    await user.click(screen.getByTestId("save-secret"));
    expect(await screen.findByTestId("secret-error")).toHaveTextContent(
      "This computer may not change the relay's connections. Ask whoever looks after the relay.",
    );
  });
});

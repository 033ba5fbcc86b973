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

    // 5. Test.
    const test = await screen.findByTestId("connect-step-test");
    expect(test).toHaveTextContent("Tiquo – main is connected");
    expect(test).toHaveTextContent("Test messages show in Activity but never create customers.");
    backend.sendTestEvent.mockResolvedValue({ ok: true, message: "Tiquo's test message arrived and was checked." });
    await user.click(screen.getByTestId("send-test"));
    expect(backend.sendTestEvent).toHaveBeenCalledWith("tiquo", "main");
    expect(await screen.findByTestId("test-result")).toHaveTextContent("Tiquo's test message arrived and was checked.");
    await user.click(screen.getByTestId("connect-done"));
    expect(ondone).toHaveBeenCalled();
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
    await user.type(name, "main salon");
    await user.click(screen.getByTestId("name-next"));
    expect(screen.getByTestId("name-error")).toHaveTextContent("letters, digits, - and _");
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
    expect(within(test).getByTestId("relay-test-note")).toHaveTextContent("The relay sends itself a sample message");
    expect(screen.queryByTestId("final-webhook-url")).not.toBeInTheDocument();
    backend.sendTestEvent.mockResolvedValue({ ok: true, message: "It works: the relay received a test message." });
    await user.click(screen.getByTestId("send-test"));
    expect(backend.sendTestEvent).toHaveBeenCalledWith("tiquo", "main");
    expect(await screen.findByTestId("test-result")).toHaveTextContent("It works: the relay received");
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

// Connecting a provider, step by step: choose it, name the connection, paste Clientele's address
// into the provider, paste the provider's secret here, and send a test. The connection is created
// only when the secret is given (or explicitly not), so nothing ever accepts unsigned messages by
// accident. ConnectFlow.svelte shows the current step; each step is a component in this folder.
// On a computer that may manage its relay's connections, the connection is added to the relay:
// the address is the relay's, and the secret goes there.

import { tick } from "svelte";
import {
  addConnection,
  getRelayStatus,
  getSettings,
  listConnections,
  listProviders,
  sendTestEvent,
  toAppError,
  type ConnectionView,
  type ProviderId,
  type ProviderInfo,
  type RelayStatus,
  type SettingsView,
  type TestEventResult,
  type UiError,
  type UiErrorCode,
} from "$lib/backend";
import { listenerUrl } from "$lib/engine.svelte";
import { relayActionError } from "$lib/relay";

export type Step = "provider" | "name" | "address" | "secret" | "test";

export const STEPS: { id: Step; label: string }[] = [
  { id: "provider", label: "Choose the provider" },
  { id: "name", label: "Name the connection" },
  { id: "address", label: "Paste the address" },
  { id: "secret", label: "Paste the secret" },
  { id: "test", label: "Send a test" },
];

/** Same rule as the engine: URL-safe, 1 to 64 characters. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Names that differ only by case or by - versus _ collide in the engine's secret names. */
export function sameName(a: string, b: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/-/g, "_");
  return norm(a) === norm(b);
}

/**
 * Engine refusals that are about the name, so the flow goes back to the name step: a badly formed
 * name (invalid_input) or one that clashes with an existing connection (connection_name_taken).
 */
export function isNameError(code: UiErrorCode): boolean {
  return code === "connection_name_taken" || code === "invalid_input";
}

/**
 * The first part of the address to paste into the provider. An address bound to every interface
 * (0.0.0.0) is not one to paste anywhere, so then (and with no address) it is this computer's.
 */
export function addressBase(settings: SettingsView): string {
  const address = settings.listener.address;
  return address && !/^(0\.0\.0\.0|\[::\])(:|$)/.test(address.replace(/^https?:\/\//, ""))
    ? listenerUrl(address)
    : `http://127.0.0.1:${settings.port}`;
}

/** "main", or the first of "main-2", "main-3", … that `provider` has no connection called. */
export function suggestName(existing: readonly ConnectionView[], provider: ProviderId): string {
  const names = existing.filter((c) => c.provider === provider).map((c) => c.name);
  if (!names.some((n) => sameName(n, "main"))) return "main";
  for (let i = 2; ; i++) if (!names.some((n) => sameName(n, `main-${i}`))) return `main-${i}`;
}

/** Why `name` (already trimmed) can't name a new `provider` connection, in words; null if it can. */
export function nameProblem(name: string, provider: ProviderInfo, existing: readonly ConnectionView[]): string | null {
  if (!NAME_PATTERN.test(name)) {
    return name === ""
      ? "Give the connection a name, for example main."
      : "Use only letters, digits, - and _ (up to 64), for example main-salon.";
  }
  const clash = existing.find((c) => c.provider === provider.id && sameName(c.name, name));
  if (clash) return `There is already a ${provider.name} connection called '${clash.name}'. Choose another name.`;
  return null;
}

export class ConnectFlowState {
  step = $state<Step>("provider");
  providers = $state<ProviderInfo[] | null>(null);
  existing = $state<ConnectionView[]>([]);
  base = $state<string | null>(null);
  loadError = $state<UiError | null>(null);
  /** Where this computer's relay link stands; null when it couldn't be read (then: this computer). */
  relay = $state<RelayStatus | null>(null);
  /** The new connection goes to the relay (joined, and allowed to manage its connections). */
  throughRelay = $derived(this.relay !== null && this.relay.state !== "not_joined" && this.relay.admin);

  provider = $state<ProviderInfo | null>(null);
  name = $state("main");
  nameError = $state<string | null>(null);

  secret = $state("");
  secretError = $state<string | null>(null);
  noSecretWarning = $state(false);
  saving = $state(false);

  created = $state<ConnectionView | null>(null);
  testing = $state(false);
  testResult = $state<TestEventResult | null>(null);
  testError = $state<string | null>(null);

  stepIndex = $derived(STEPS.findIndex((s) => s.id === this.step));
  /** The address the connection will have, shown before it is created. */
  previewAddress = $derived(
    this.provider && this.base ? `${this.base}/hooks/${this.provider.id}/${this.name.trim()}` : null,
  );

  private moved: (step: Step) => void;

  /** `moved` runs once the next step is on screen (the shell moves the focus into it). */
  constructor(moved: (step: Step) => void = () => {}) {
    this.moved = moved;
  }

  async load(): Promise<void> {
    this.loadError = null;
    this.providers = null;
    try {
      const [list, connections, settings, relay] = await Promise.all([
        listProviders(),
        listConnections(),
        getSettings(),
        // Not knowing about a relay only means connecting on this computer, as before.
        getRelayStatus().catch(() => null),
      ]);
      this.providers = list;
      this.existing = connections;
      this.relay = relay;
      this.base = this.throughRelay && relay?.public_url ? relay.public_url.replace(/\/+$/, "") : addressBase(settings);
    } catch (e) {
      this.loadError = toAppError(e);
    }
  }

  async go(next: Step): Promise<void> {
    this.step = next;
    await tick();
    this.moved(next);
  }

  chooseProvider(p: ProviderInfo): void {
    this.provider = p;
    this.nameError = null;
    const taken = this.existing.some((c) => c.provider === p.id && sameName(c.name, this.name));
    if (taken) this.name = suggestName(this.existing, p.id);
    void this.go("name");
  }

  /** Goes on to the address when the name can be used; otherwise says why and stays. */
  submitName(): void {
    if (!this.provider) return;
    const trimmed = this.name.trim();
    this.nameError = nameProblem(trimmed, this.provider, this.existing);
    if (this.nameError) return;
    this.name = trimmed;
    void this.go("address");
  }

  /** Creates the connection with the pasted secret, or with none; the field is emptied either way. */
  async create(withSecret: boolean): Promise<void> {
    const provider = this.provider;
    if (!provider) return;
    const value = this.secret;
    this.secret = "";
    if (withSecret && value.trim() === "") {
      this.secretError = `Paste the ${provider.secret_word} from ${provider.name} first.`;
      return;
    }
    this.saving = true;
    this.secretError = null;
    try {
      this.created = await addConnection({
        provider: provider.id,
        name: this.name,
        secret: withSecret ? value.trim() : null,
      });
      this.noSecretWarning = false;
      void this.go("test");
    } catch (e) {
      const err = toAppError(e);
      if (isNameError(err.code)) {
        this.nameError = err.message;
        void this.go("name");
      } else {
        this.secretError = relayActionError(err) ?? err.message;
      }
    } finally {
      this.saving = false;
    }
  }

  async sendTest(): Promise<void> {
    const created = this.created;
    if (!created) return;
    this.testing = true;
    this.testResult = null;
    this.testError = null;
    try {
      this.testResult = await sendTestEvent(created.provider, created.name);
    } catch (e) {
      this.testError = toAppError(e).message;
    } finally {
      this.testing = false;
    }
  }
}

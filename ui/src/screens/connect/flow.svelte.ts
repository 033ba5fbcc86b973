// Connecting a provider, step by step: choose it, name the connection, paste Clientele's address
// into the provider, paste the provider's secret here, then check it works: a test message shows
// what Clientele can check from its side, and the step waits, visibly, for the provider's own
// first message — the only proof that the provider reaches Clientele with the right secret. The
// connection is created only when the secret is given (or explicitly not), so nothing ever
// accepts unsigned messages by accident, and leaving while waiting loses nothing (Providers says
// "Waiting for the first message" until it comes). ConnectFlow.svelte shows the current step;
// each step is a component in this folder. On a computer that may manage its relay's
// connections, the connection is added to the relay: the address is the relay's, and the secret
// goes there.

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
import { engine, listenerUrl } from "$lib/engine.svelte";
import { subscribeLive } from "$lib/live";
import { relayActionError } from "$lib/relay";

export type Step = "provider" | "name" | "address" | "secret" | "test";

export const STEPS: { id: Step; label: string }[] = [
  { id: "provider", label: "Choose the provider" },
  { id: "name", label: "Name the connection" },
  { id: "address", label: "Paste the address" },
  { id: "secret", label: "Paste the secret" },
  { id: "test", label: "Check it works" },
];

/** Same rule as the engine: URL-safe, 1 to 64 characters. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Letters that don't come apart into a plain letter and an accent. */
const SPELLED_OUT: Record<string, string> = { ß: "ss", æ: "ae", œ: "oe", ø: "o", ł: "l", đ: "d", ð: "d", þ: "th", ı: "i" };

/**
 * The connection's name made from what the person typed: "Main Salon" → "main-salon". Lower
 * case, accents dropped ("Salão" → "salao"), every run of spaces and punctuation one hyphen, none
 * at either end, at most 64 characters. "" when nothing usable was typed. (The command line keeps
 * the engine's stricter rule: names are given as they are.)
 */
export function connectionNameFrom(typed: string): string {
  const slug = typed
    .toLowerCase()
    .replace(/[ßæœøłđðþı]/g, (c) => SPELLED_OUT[c] ?? c)
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+/, "");
  return slug.slice(0, 64).replace(/-+$/, "");
}

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

/**
 * Why `name` (as made by connectionNameFrom, from `typed`) can't name a new `provider` connection,
 * in words; null if it can.
 */
export function nameProblem(
  name: string,
  provider: ProviderInfo,
  existing: readonly ConnectionView[],
  typed: string = name,
): string | null {
  if (!NAME_PATTERN.test(name)) {
    return typed.trim() === ""
      ? "Give the connection a name, for example Main salon."
      : "Use some letters or digits in the name, for example Main salon.";
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
  /** The name as typed ("Main Salon"). */
  nameTyped = $state("main");
  /** The connection's name made from it ("main-salon"): shown before saving, and saved. */
  name = $derived(connectionNameFrom(this.nameTyped));
  nameError = $state<string | null>(null);

  secret = $state("");
  secretError = $state<string | null>(null);
  noSecretWarning = $state(false);
  saving = $state(false);

  created = $state<ConnectionView | null>(null);
  testing = $state(false);
  testResult = $state<TestEventResult | null>(null);
  testError = $state<string | null>(null);
  /** When the provider's own first (genuine, not test) message arrived; null while waiting. */
  firstMessageAt = $state<string | null>(null);

  stepIndex = $derived(STEPS.findIndex((s) => s.id === this.step));
  /** The address the connection will have, shown before it is created. */
  previewAddress = $derived(
    this.provider && this.base && this.name ? `${this.base}/hooks/${this.provider.id}/${this.name}` : null,
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
    if (taken) this.nameTyped = suggestName(this.existing, p.id);
    void this.go("name");
  }

  /** Goes on to the address when the name can be used; otherwise says why and stays. */
  submitName(): void {
    if (!this.provider) return;
    this.nameError = nameProblem(this.name, this.provider, this.existing, this.nameTyped);
    if (this.nameError) return;
    void this.go("address");
  }

  /** The secret field changed: an error about the previous attempt no longer applies. */
  secretChanged(): void {
    this.secretError = null;
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
      // The navigation's line ("Ready — connect a provider") changes with the first connection.
      void engine.refresh();
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

  /**
   * Looks whether the provider's first genuine message has arrived: the connection's last message
   * time, which test messages never set. Keeps what it finds (also when it can't look: then it
   * simply looks again at the next live update).
   */
  async checkFirstMessage(): Promise<void> {
    const created = this.created;
    if (!created || this.firstMessageAt) return;
    try {
      const found = (await listConnections()).find((c) => c.provider === created.provider && c.name === created.name);
      if (found?.health.last_delivery_at) {
        this.created = found;
        this.firstMessageAt = found.health.last_delivery_at;
      }
    } catch {
      // Not knowing yet is still waiting; the next message tries again.
    }
  }

  /** Waits for the first message while the test step is shown; returns a function that stops. */
  watchForFirstMessage(): () => void {
    void this.checkFirstMessage();
    return subscribeLive((update) => {
      if (update.deliveries > 0) void this.checkFirstMessage();
    });
  }
}

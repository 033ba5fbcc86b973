// Realistic engine answers for component tests.

import type {
  ActivityItem,
  ConnectionView,
  DeliveryDetailView,
  PersonDetail,
  PersonSummary,
  ProviderInfo,
  RelayStatus,
  SettingsView,
} from "$lib/backend";

export function hoursAgo(hours: number): string {
  return new Date(Date.now() - hours * 3600_000).toISOString();
}

export const PROVIDERS: ProviderInfo[] = [
  {
    id: "tiquo",
    name: "Tiquo",
    secret_word: "signing secret",
    where_to_find_secret: "In Tiquo, open Webhooks settings and copy your endpoint's signing secret.",
    where_to_paste: "In Tiquo, open Settings → Webhooks → Add endpoint and paste it as the URL.",
    events_to_tick: ["customer.created", "customer.updated", "customer.deleted"],
    timeline_events: ["order.created", "payment.succeeded", "loyalty.points_earned"],
    events_note: null,
    checks: "Clientele checks each message's signature with your Tiquo signing secret, and refuses one sent more than 5 minutes earlier (a possible replay).",
  },
  {
    id: "vagaro",
    name: "Vagaro",
    secret_word: "verification token",
    where_to_find_secret: "In Vagaro, open Settings → Webhooks and copy the verification token.",
    where_to_paste: "In Vagaro, open Settings → Webhooks → Create webhook and paste it as the endpoint URL.",
    events_to_tick: ["Customer"],
    timeline_events: ["Appointment"],
    events_note: null,
    checks: "Clientele checks that each message carries your Vagaro verification token. A message sent twice is kept once.",
  },
];

export function connection(overrides: Partial<ConnectionView> = {}): ConnectionView {
  return {
    provider: "vagaro",
    provider_name: "Vagaro",
    name: "main",
    webhook_url: "http://127.0.0.1:8787/hooks/vagaro/main",
    requires_secret: true,
    secret_set: true,
    paused: false,
    created_at: "2024-01-10T09:00:00Z",
    via_relay: false,
    forget_deleted_after_days: null,
    health: {
      last_delivery_at: hoursAgo(3),
      deliveries_today: 12,
      rejections_today: 0,
      recent_rejections: [],
      quiet_warning: null,
    },
    ...overrides,
  };
}

export function settings(overrides: Partial<SettingsView> = {}): SettingsView {
  return {
    port: 8787,
    allow_network: false,
    data_dir: "/home/ana/.local/share/clientele",
    start_at_login: false,
    keep_in_tray: true,
    version: "0.1.0",
    listener: { running: true, address: "127.0.0.1:8787", error: null },
    ...overrides,
  };
}

/** A computer that isn't joined to a relay. */
export const NOT_JOINED: RelayStatus = {
  state: "not_joined",
  url: null,
  host: null,
  name: null,
  admin: false,
  public_url: null,
  since: null,
  error: null,
  last_pull_at: null,
  last_delivery_at: null,
  received: 0,
};

/** A computer joined to relay.example.com and connected to it. */
export function relayStatus(overrides: Partial<RelayStatus> = {}): RelayStatus {
  return {
    state: "connected",
    url: "https://relay.example.com",
    host: "relay.example.com",
    name: "front-desk",
    admin: false,
    public_url: "https://relay.example.com",
    since: null,
    error: null,
    last_pull_at: hoursAgo(0.01),
    last_delivery_at: null,
    received: 0,
    ...overrides,
  };
}

export function person(id: number, overrides: Partial<PersonSummary> = {}): PersonSummary {
  return {
    id,
    display_name: `Customer ${id}`,
    emails: [`customer${id}@example.com`],
    phones: [],
    sources: [
      {
        provider: "tiquo",
        provider_name: "Tiquo",
        connection: "main",
        customer_ref: `cus_${id}`,
        deleted_at: null,
        linked_because: null,
        record: { provider: "tiquo", connection: "main", customer_ref: `cus_${id}` },
        by_hand: false,
      },
    ],
    first_event_at: "2024-01-01T10:00:00Z",
    last_event_at: "2024-01-20T15:00:00Z",
    deleted: false,
    ...overrides,
  };
}

/** A search answer: `total` people, of which the requested page is built on the fly. */
export function peoplePages(total: number, name = "Customer") {
  return async (_query: string, offset: number, limit: number) => {
    const items: PersonSummary[] = [];
    for (let i = offset; i < Math.min(total, offset + limit); i++) {
      items.push(person(i + 1, { display_name: `${name} ${i + 1}` }));
    }
    return { total, more: false, items };
  };
}

export function personDetail(overrides: Partial<PersonDetail> = {}): PersonDetail {
  return {
    id: 7,
    display_name: "Ana Silva",
    deleted: false,
    emails: ["ana.new@example.com"],
    phones: ["+44 7700 900123"],
    profile: [
      { field: "email", label: "Email", value: "ana.new@example.com", value_kind: "text", provider_name: "Tiquo", at: "2024-01-20T15:00:00Z", group: "main", phone_link: null },
      { field: "loyalty_tier", label: "Loyalty tier", value: "Silver", value_kind: "text", provider_name: "Zupy", at: "2024-01-18T09:30:00Z", group: "loyalty", phone_link: null },
    ],
    earlier_emails: [],
    earlier_phones: [],
    businesses: [],
    sources: [
      {
        provider: "tiquo",
        provider_name: "Tiquo",
        connection: "main",
        customer_ref: "cus_123",
        deleted_at: null,
        linked_because: null,
        record: { provider: "tiquo", connection: "main", customer_ref: "cus_123" },
        by_hand: false,
      },
      {
        provider: "zupy",
        provider_name: "Zupy",
        connection: "loyalty",
        customer_ref: "z-998",
        deleted_at: null,
        linked_because: "Same email address: ana.new@example.com",
        record: { provider: "zupy", connection: "loyalty", customer_ref: "z-998" },
        by_hand: false,
      },
    ],
    // Deliberately not in order: the screen must show newest first.
    timeline: [
      {
        occurred_at: "2024-01-05T10:00:00Z",
        provider: "tiquo",
        provider_name: "Tiquo",
        connection: "main",
        kind: "created",
        summary: "Joined through the booking portal",
        changes: [],
      },
      {
        occurred_at: "2024-01-20T15:00:00Z",
        provider: "tiquo",
        provider_name: "Tiquo",
        connection: "main",
        kind: "updated",
        summary: "Email changed from ana@example.com to ana.new@example.com",
        changes: [{ field: "email", label: "Email", old: "ana@example.com", new: "ana.new@example.com" }],
      },
      {
        occurred_at: "2024-01-18T09:30:00Z",
        provider: "zupy",
        provider_name: "Zupy",
        connection: "loyalty",
        kind: "tier_changed",
        summary: "Moved up from Bronze to Silver (2,500 points)",
        changes: [{ field: "tier", label: "Loyalty tier", old: "Bronze", new: "Silver" }],
      },
    ],
    ...overrides,
  };
}

export function activityItem(overrides: Partial<ActivityItem> = {}): ActivityItem {
  return {
    kind: "delivery",
    id: 41,
    provider: "tiquo",
    provider_name: "Tiquo",
    connection: "main",
    received_at: "2024-01-20T15:00:00Z",
    status: "processed",
    duplicates: 0,
    summary: "Email changed from ana@example.com to ana.new@example.com",
    reason: null,
    person_id: 7,
    person_name: "Ana Silva",
    technical: null,
    ...overrides,
  };
}

export function deliveryDetail(overrides: Partial<DeliveryDetailView> = {}): DeliveryDetailView {
  return {
    id: 41,
    provider: "tiquo",
    provider_name: "Tiquo",
    connection: "main",
    received_at: "2024-01-20T15:00:00Z",
    status: "processed",
    duplicates: 0,
    dedupe_key: "tiquo:evt_123",
    verification: "Checked: signed by Tiquo, sent less than 5 minutes before it arrived.",
    headers: [
      ["content-type", "application/json"],
      ["x-tiquo-timestamp", "1705762800"],
    ],
    body_pretty: '{\n  "type": "customer.updated",\n  "data": { "email": "ana.new@example.com" }\n}',
    body_is_json: true,
    error: null,
    error_plain: null,
    events: [{ occurred_at: "2024-01-20T15:00:00Z", summary: "Email changed from ana@example.com to ana.new@example.com" }],
    people: [{ id: 7, name: "Ana Silva" }],
    ...overrides,
  };
}

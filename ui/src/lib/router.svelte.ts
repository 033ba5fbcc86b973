// A tiny hash router: #/customers, #/customers/42, #/customers/changes (changes made by hand), #/activity, #/providers, #/providers/connect,
// #/exports, #/settings. The hash keeps the place on reload and gives WebDriver stable URLs.

export type Screen = "customers" | "activity" | "providers" | "exports" | "settings";

export type Route =
  | { screen: "customers"; personId: number | null; changes?: boolean }
  | { screen: "activity" }
  | { screen: "providers"; connecting: boolean }
  | { screen: "exports" }
  | { screen: "settings" };

export function parseHash(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  switch (parts[0]) {
    case "activity":
      return { screen: "activity" };
    case "providers":
      return { screen: "providers", connecting: parts[1] === "connect" };
    case "exports":
      return { screen: "exports" };
    case "settings":
      return { screen: "settings" };
    case "customers": {
      if (parts[1] === "changes") return { screen: "customers", personId: null, changes: true };
      const id = Number(parts[1]);
      return { screen: "customers", personId: parts[1] && Number.isInteger(id) ? id : null };
    }
    default:
      return { screen: "customers", personId: null };
  }
}

export function hrefFor(route: Route): string {
  switch (route.screen) {
    case "customers":
      if (route.changes) return "#/customers/changes";
      return route.personId === null ? "#/customers" : `#/customers/${route.personId}`;
    case "providers":
      return route.connecting ? "#/providers/connect" : "#/providers";
    default:
      return `#/${route.screen}`;
  }
}

class Router {
  current: Route = $state(parseHash(typeof location === "undefined" ? "" : location.hash));

  constructor() {
    if (typeof window !== "undefined") {
      window.addEventListener("hashchange", () => {
        this.current = parseHash(location.hash);
      });
    }
  }

  go(route: Route): void {
    const href = hrefFor(route);
    this.current = route;
    if (location.hash !== href) location.hash = href;
  }

  /** Re-reads location.hash (tests set it before rendering). */
  sync(): void {
    this.current = parseHash(location.hash);
  }
}

export const router = new Router();

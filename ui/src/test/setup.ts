import "@testing-library/jest-dom/vitest";
import { afterEach } from "vitest";

// jsdom has no layout, so no ResizeObserver; Svelte's bind:clientHeight needs one to exist.
if (!("ResizeObserver" in globalThis)) {
  class ResizeObserverStub {
    observe(): void {}
    unobserve(): void {}
    disconnect(): void {}
  }
  (globalThis as unknown as { ResizeObserver: unknown }).ResizeObserver = ResizeObserverStub;
}

afterEach(() => {
  location.hash = "";
});

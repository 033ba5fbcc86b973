import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../test/mock-backend"));
import * as backend from "../test/mock-backend";
import { NO_BACKEND } from "$lib/backend/errors";
import { peoplePages, person } from "../test/fixtures";
import Customers, { ROW_HEIGHT } from "./Customers.svelte";

beforeEach(() => backend.resetBackend());

describe("Customers", () => {
  it("shows skeleton rows while the first page loads", async () => {
    backend.searchPeople.mockReturnValue(new Promise(() => {}));
    render(Customers);
    expect(screen.getByTestId("customers-loading")).toBeInTheDocument();
    expect(screen.queryByTestId("customer-row")).not.toBeInTheDocument();
  });

  it("says there are no customers yet and offers to connect a provider", async () => {
    backend.searchPeople.mockResolvedValue({ total: 0, more: false, items: [] });
    render(Customers);
    expect(
      await screen.findByText("No customers yet. Connect a provider — it takes about two minutes."),
    ).toBeInTheDocument();
    expect(screen.getByTestId("empty-connect")).toHaveAttribute("href", "#/providers/connect");
  });

  it("renders only the rows in view of 100,000 people and fetches by page", async () => {
    backend.searchPeople.mockImplementation(peoplePages(100_000));
    render(Customers);
    const rows = await screen.findAllByTestId("customer-row");
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(100);
    expect(screen.getByTestId("customer-count")).toHaveTextContent(/100,000 customers/);
    expect(backend.searchPeople).toHaveBeenCalledWith("", 0, 50);
    // Every request is one page, never everything.
    for (const call of backend.searchPeople.mock.calls) expect(call[2]).toBe(50);
    expect(rows[0]).toHaveTextContent("Customer 1");
    expect(rows[0]).toHaveAttribute("href", "#/customers/1");
  });

  it("fetches the page that scrolls into view, and only that", async () => {
    backend.searchPeople.mockImplementation(peoplePages(100_000));
    render(Customers);
    await screen.findAllByTestId("customer-row");
    const viewport = screen.getByTestId("customer-list").parentElement!;
    // jsdom has no layout: pretend the list was scrolled to row 5,000.
    Object.defineProperty(viewport, "scrollTop", { configurable: true, value: 5_000 * ROW_HEIGHT });
    await fireEvent.scroll(viewport);
    expect(await screen.findByText("Customer 5001")).toBeInTheDocument();
    const offsets = backend.searchPeople.mock.calls.map((c) => c[1]);
    expect(offsets).toContain(5_000);
    expect(offsets).not.toContain(2_500);
    expect(screen.getAllByTestId("customer-row").length).toBeLessThan(100);
  });

  it("moves between rows with the arrow keys", async () => {
    const user = userEvent.setup();
    backend.searchPeople.mockImplementation(peoplePages(30));
    render(Customers);
    const rows = await screen.findAllByTestId("customer-row");
    rows[0]!.focus();
    await user.keyboard("{ArrowDown}");
    expect(screen.getAllByTestId("customer-row")[1]).toHaveFocus();
    await user.keyboard("{ArrowUp}");
    expect(screen.getAllByTestId("customer-row")[0]).toHaveFocus();
  });

  it("searches as you type (debounced) and says when nothing matches", async () => {
    const user = userEvent.setup();
    backend.searchPeople.mockImplementation(async (query: string) =>
      query === "" ? { total: 1, more: false, items: [person(1)] } : { total: 0, more: false, items: [] },
    );
    render(Customers);
    await screen.findByTestId("customer-row");
    await user.type(screen.getByTestId("customer-search"), "zoe");
    expect(await screen.findByText("No customers match 'zoe'")).toBeInTheDocument();
    const queries = backend.searchPeople.mock.calls.map((c) => c[0]);
    expect(queries).toContain("zoe");
    // Debounced: not one request per keystroke.
    expect(queries).not.toContain("z");
    expect(queries).not.toContain("zo");
  });

  it("says when more customers match a search than it lists", async () => {
    const user = userEvent.setup();
    backend.searchPeople.mockImplementation(async (query: string, offset: number, limit: number) =>
      query === ""
        ? await peoplePages(5_000)(query, offset, limit)
        : { ...(await peoplePages(1_000, "Smith")(query, offset, limit)), more: true },
    );
    render(Customers);
    // The screen keeps the last search across visits (an earlier test typed one).
    await user.clear(screen.getByTestId("customer-search"));
    await waitFor(() => expect(screen.getByTestId("customer-count")).toHaveTextContent("5,000 customers"));
    expect(screen.queryByTestId("customers-more")).not.toBeInTheDocument();
    await user.type(screen.getByTestId("customer-search"), "smith");
    await waitFor(() => expect(screen.getByTestId("customer-count")).toHaveTextContent("More than 1,000 matches"));
    expect(screen.getByTestId("customers-more")).toHaveTextContent(
      "These are the first 1,000. Type more of the name, email or phone number to find the rest.",
    );
    // The list is as long as what it lists.
    expect(screen.getByTestId("customer-list")).toHaveStyle({ height: `${1_000 * ROW_HEIGHT}px` });
    await user.clear(screen.getByTestId("customer-search"));
    await waitFor(() => expect(screen.getByTestId("customer-count")).toHaveTextContent("5,000 customers"));
    expect(screen.queryByTestId("customers-more")).not.toBeInTheDocument();
  });

  it("shows what went wrong, what to do, and a Copy details button", async () => {
    backend.searchPeople.mockRejectedValue({ ...NO_BACKEND });
    render(Customers);
    expect(await screen.findByText("Couldn't show your customers")).toBeInTheDocument();
    expect(screen.getByTestId("error-message")).toHaveTextContent("Clientele's engine isn't running");
    expect(screen.getByText(/Close Clientele and open it again/)).toBeInTheDocument();
    expect(screen.getByTestId("copy-details")).toHaveTextContent("Copy details");
    backend.searchPeople.mockResolvedValue({ total: 1, more: false, items: [person(1)] });
    await fireEvent.click(screen.getByTestId("retry"));
    expect(await screen.findByTestId("customer-row")).toHaveTextContent("Customer 1");
  });

  it("refreshes when a live update mentions people", async () => {
    backend.searchPeople.mockResolvedValueOnce({ total: 1, more: false, items: [person(1, { display_name: "Ana Silva" })] });
    render(Customers);
    await screen.findByText("Ana Silva");
    await waitFor(() => expect(backend.liveListenerCount()).toBe(1));
    backend.searchPeople.mockResolvedValue({
      total: 2,
      more: false,
      items: [person(2, { display_name: "Bruno Costa" }), person(1, { display_name: "Ana Silva" })],
    });
    backend.emitLive({ deliveries: 0 });
    expect(backend.searchPeople).toHaveBeenCalledTimes(1);
    backend.emitLive({ deliveries: 1, people: [2] });
    expect(await screen.findByText("Bruno Costa")).toBeInTheDocument();
  });

  it("marks deleted customers", async () => {
    backend.searchPeople.mockResolvedValue({ total: 1, more: false, items: [person(1, { deleted: true })] });
    render(Customers);
    const row = await screen.findByTestId("customer-row");
    expect(row).toHaveTextContent("Deleted");
  });
});

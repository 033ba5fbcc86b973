// The Person screen's changes made by hand: separating a record, merging with another customer
// found by search, and forgetting the customer.
import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../test/mock-backend"));
import * as backend from "../test/mock-backend";
import { person, personDetail } from "../test/fixtures";
import { decision, forgetOutcome, forgetPreviewOf, handOutcome } from "../test/hand-fixtures";
import { router } from "$lib/router.svelte";
import { takeFlash } from "$lib/flash";
import Person from "./Person.svelte";

beforeEach(() => {
  backend.resetBackend();
  location.hash = "#/customers/7";
  router.sync();
});

describe("Person: changes made by hand", () => {
  it("shows a hand link's sentence as the engine wrote it, marked By hand", async () => {
    const detail = personDetail();
    detail.sources[1] = { ...detail.sources[1]!, linked_because: "Linked by hand on Front desk on 3 March 2026", by_hand: true };
    backend.personDetail.mockResolvedValue(detail);
    render(Person, { id: 7 });
    const rows = await screen.findAllByTestId("source-row");
    expect(within(rows[1]!).getByTestId("link-reason")).toHaveTextContent(/^Linked by hand on Front desk on 3 March 2026$/);
    expect(within(rows[1]!).getByTestId("by-hand-badge")).toHaveTextContent("By hand");
    expect(within(rows[0]!).queryByTestId("by-hand-badge")).not.toBeInTheDocument();
  });

  it("offers no separation when the customer has one record", async () => {
    const detail = personDetail();
    detail.sources = detail.sources.slice(0, 1);
    backend.personDetail.mockResolvedValue(detail);
    render(Person, { id: 7 });
    await screen.findAllByTestId("source-row");
    expect(screen.queryByTestId("split-record")).not.toBeInTheDocument();
  });

  it("separates a record after saying what happens, and links to the new customer", async () => {
    const user = userEvent.setup();
    backend.personDetail.mockResolvedValue(personDetail());
    backend.splitRecord.mockResolvedValue(
      handOutcome({ decision: decision({ kind: "split", people: [12] }), person_id: 7 }),
    );
    render(Person, { id: 7 });
    const rows = await screen.findAllByTestId("source-row");
    await user.click(within(rows[1]!).getByTestId("split-record"));
    const dialog = screen.getByTestId("split-dialog");
    expect(dialog).toHaveTextContent("Zupy – loyalty");
    expect(within(dialog).getByTestId("split-sentence")).toHaveTextContent(
      "This record will be shown as a customer of its own, and stays apart even if it shares an email or phone later. You can undo this in Changes made by hand.",
    );
    const afterwards = personDetail();
    afterwards.sources = afterwards.sources.slice(0, 1);
    backend.personDetail.mockResolvedValue(afterwards);
    await user.click(screen.getByTestId("confirm-split"));
    expect(backend.splitRecord).toHaveBeenCalledWith(7, { provider: "zupy", connection: "loyalty", customer_ref: "z-998" });
    expect(await screen.findByTestId("person-flash")).toHaveTextContent(
      "Separated. The Zupy – loyalty record is now a customer of its own.",
    );
    expect(screen.getByTestId("flash-link")).toHaveAttribute("href", "#/customers/12");
    expect(screen.queryByTestId("split-dialog")).not.toBeInTheDocument();
    await waitFor(() => expect(screen.getAllByTestId("source-row")).toHaveLength(1));
  });

  it("opens the rest of the customer when their number went with the separated record", async () => {
    const user = userEvent.setup();
    backend.personDetail.mockResolvedValue(personDetail());
    backend.splitRecord.mockResolvedValue(
      handOutcome({ decision: decision({ kind: "split", people: [7] }), person_id: 13 }),
    );
    render(Person, { id: 7 });
    await user.click((await screen.findAllByTestId("split-record"))[0]!);
    await user.click(screen.getByTestId("confirm-split"));
    await waitFor(() => expect(router.current).toEqual({ screen: "customers", personId: 13 }));
    expect(takeFlash("person/13")).toEqual({
      where: "person/13",
      text: "Separated. The Tiquo – main record is now a customer of its own.",
      tone: "ok",
      link: { href: "#/customers/7", text: "Open the separated record" },
    });
  });

  it("keeps the dialog open and says why when separating fails", async () => {
    const user = userEvent.setup();
    backend.personDetail.mockResolvedValue(personDetail());
    backend.splitRecord.mockRejectedValue({ code: "invalid_input", message: "That record isn't part of this customer." });
    render(Person, { id: 7 });
    await user.click((await screen.findAllByTestId("split-record"))[0]!);
    await user.click(screen.getByTestId("confirm-split"));
    expect(await within(screen.getByTestId("split-dialog")).findByRole("alert")).toHaveTextContent(
      "Couldn't separate it: That record isn't part of this customer.",
    );
  });

  it("merges with a customer found by search (never the customer itself), then opens the merged one", async () => {
    const user = userEvent.setup();
    backend.personDetail.mockResolvedValue(personDetail());
    backend.searchPeople.mockResolvedValue({
      total: 2,
      more: false,
      items: [person(7, { display_name: "Ana Silva" }), person(9, { display_name: "Ana S.", emails: ["ana.work@example.com"] })],
    });
    backend.mergePeople.mockResolvedValue(handOutcome({ person_id: 9 }));
    render(Person, { id: 7 });
    await user.click(await screen.findByTestId("merge-person"));
    await user.type(screen.getByTestId("merge-search"), "ana");
    const candidates = await screen.findAllByTestId("merge-candidate");
    expect(backend.searchPeople).toHaveBeenLastCalledWith("ana", 0, 9);
    expect(candidates).toHaveLength(1);
    expect(candidates[0]).toHaveTextContent("Ana S.");
    expect(candidates[0]).toHaveTextContent("ana.work@example.com");
    await user.click(candidates[0]!);
    expect(screen.getByTestId("merge-sentence")).toHaveTextContent(
      "Ana Silva and Ana S. will be shown as one customer. You can undo this in Changes made by hand.",
    );
    await user.click(screen.getByTestId("confirm-merge"));
    expect(backend.mergePeople).toHaveBeenCalledWith(7, 9);
    await waitFor(() => expect(router.current).toEqual({ screen: "customers", personId: 9 }));
    expect(takeFlash("person/9")?.text).toBe("Merged with Ana S. — you can undo this in Changes made by hand.");
  });

  it("says when no other customer matches", async () => {
    const user = userEvent.setup();
    backend.personDetail.mockResolvedValue(personDetail());
    backend.searchPeople.mockResolvedValue({ total: 1, more: false, items: [person(7, { display_name: "Ana Silva" })] });
    render(Person, { id: 7 });
    await user.click(await screen.findByTestId("merge-person"));
    await user.type(screen.getByTestId("merge-search"), "ana silva");
    expect(await screen.findByTestId("merge-no-match")).toHaveTextContent("No other customer matches 'ana silva'.");
  });

  it("forgets only after the preview is read and the box ticked, then leaves for Customers with the result", async () => {
    const user = userEvent.setup();
    backend.personDetail.mockResolvedValue(personDetail());
    backend.forgetPreview.mockResolvedValue(forgetPreviewOf());
    backend.forgetPerson.mockResolvedValue(
      forgetOutcome({
        keep_forgetting: true,
        relay: { state: "pending", message: "The relay couldn't be reached; its copy will be forgotten when it is back." },
      }),
    );
    render(Person, { id: 7 });
    await user.click(await screen.findByTestId("forget-person"));
    const dialog = await screen.findByTestId("forget-dialog");
    expect(await within(dialog).findByTestId("forget-what")).toHaveTextContent(
      "Every message, record and link about Ana Silva is erased from this computer. This can't be undone.",
    );
    expect(within(dialog).getByTestId("forget-counts")).toHaveTextContent("That is 2 records at Tiquo and Vagaro, and 12 messages about them.");
    const exports = within(dialog).getAllByTestId("forget-export");
    expect(exports[0]).toHaveTextContent("Included them: Mailing list");
    expect(exports[0]).toHaveTextContent("/home/desk/Documents/mailing.csv");
    expect(exports[1]).toHaveTextContent("May have included them: Backup");
    expect(dialog).toHaveTextContent("Export files already saved are outside Clientele's reach");
    expect(dialog).toHaveTextContent("If Tiquo or Vagaro sends something about them again, Clientele acknowledges it and doesn't keep it.");

    const confirm = within(dialog).getByTestId("confirm-forget");
    expect(confirm).toBeDisabled();
    await user.click(within(dialog).getByTestId("keep-forgetting"));
    await user.click(within(dialog).getByTestId("forget-understood"));
    expect(confirm).toBeEnabled();
    await user.click(confirm);
    expect(backend.forgetPerson).toHaveBeenCalledWith(7, true);
    await waitFor(() => expect(router.current).toEqual({ screen: "customers", personId: null }));
    expect(takeFlash("customers")).toEqual({
      where: "customers",
      text: "Forgotten. 12 messages erased. Clientele keeps forgetting them if their providers send anything again. The relay couldn't be reached; its copy will be forgotten when it is back.",
      tone: "warn",
    });
  });

  it("says when an export can't have included them, and shows a refusal", async () => {
    const user = userEvent.setup();
    backend.personDetail.mockResolvedValue(personDetail());
    backend.forgetPreview.mockResolvedValue(forgetPreviewOf({ exports: [] }));
    backend.forgetPerson.mockRejectedValue({ code: "internal", message: "The data folder is read-only." });
    render(Person, { id: 7 });
    await user.click(await screen.findByTestId("forget-person"));
    const dialog = await screen.findByTestId("forget-dialog");
    expect(await within(dialog).findByTestId("forget-exports")).toHaveTextContent("No export has included them.");
    await user.click(within(dialog).getByTestId("forget-understood"));
    await user.click(within(dialog).getByTestId("confirm-forget"));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("Couldn't forget them: The data folder is read-only.");
    expect(router.current).toEqual({ screen: "customers", personId: 7 });
  });
});

import { describe, expect, it } from "vitest";
import {
  erasureCounts,
  exportMentionText,
  forgetCounts,
  forgetDeletedText,
  forgetResult,
  forgetWhat,
  keepForgettingSentence,
  linkReason,
  listWords,
  mergeSentence,
  personName,
  recordKey,
  relaySentence,
  relayWarns,
  retentionSentences,
  wholeNumber,
} from "./hand";
import { formatDate } from "./format";
import { erasure, forgetOutcome, forgetPreviewOf } from "../test/hand-fixtures";

describe("words for changes made by hand and forgetting", () => {
  it("writes a record as the command line does", () => {
    expect(recordKey({ provider: "tiquo", connection: "main", customer_ref: "cus_1" })).toBe("tiquo/main/cus_1");
  });

  it("says why a record is linked: the rule's reason, or the hand's sentence as the engine wrote it", () => {
    expect(linkReason({ linked_because: "Same email address: ana@example.com", by_hand: false })).toBe(
      "Why linked: Same email address: ana@example.com",
    );
    expect(linkReason({ linked_because: "Linked by hand on Front desk on 3 March 2026", by_hand: true })).toBe(
      "Linked by hand on Front desk on 3 March 2026",
    );
    expect(linkReason({ linked_because: null, by_hand: false })).toBe("The first record of this customer");
  });

  it("names a customer, or says 'This customer' for one without a name", () => {
    expect(personName("  Ana Silva ")).toBe("Ana Silva");
    expect(personName("")).toBe("This customer");
    expect(mergeSentence("Ana Silva", "Ana S.")).toBe(
      "Ana Silva and Ana S. will be shown as one customer. You can undo this in Changes made by hand.",
    );
  });

  it("says what the relay did, and nothing when this computer isn't joined", () => {
    expect(relaySentence({ state: "not_joined" })).toBeNull();
    expect(relaySentence({ state: "shared" })).toBe("Every desk joined to the relay shows this too.");
    expect(relaySentence({ state: "shared" }, true)).toContain("The relay has forgotten them too");
    const message = "The relay couldn't be reached; its copy will be forgotten when it is back.";
    expect(relaySentence({ state: "pending", message }, true)).toBe(message);
    const refused = "They were forgotten on this computer, but the relay's copy and the other desks' weren't. The relay said: …";
    expect(relaySentence({ state: "refused", message: refused }, true)).toBe(refused);
    expect(relayWarns({ state: "refused", message: refused })).toBe(true);
    expect(relayWarns({ state: "pending", message })).toBe(true);
    expect(relayWarns({ state: "shared" })).toBe(false);
    expect(relayWarns({ state: "not_joined" })).toBe(false);
  });

  it("says plainly what forgetting did", () => {
    expect(forgetResult(forgetOutcome())).toBe("Forgotten. 12 messages erased.");
    expect(forgetResult(forgetOutcome({ deliveries: 1, rejections: 2, keep_forgetting: true }))).toBe(
      "Forgotten. 1 message erased, 2 refused requests erased. Clientele keeps forgetting them if their providers send anything again.",
    );
  });

  it("says what will be forgotten, where, and which exports hold them", () => {
    const preview = forgetPreviewOf();
    expect(forgetWhat(preview)).toBe(
      "Every message, record and link about Ana Silva is erased from this computer. This can't be undone.",
    );
    expect(forgetWhat({ ...preview, relay_joined: true })).toContain(
      "from this computer, from the relay and from every desk joined to it",
    );
    expect(forgetCounts(preview)).toBe("2 records at Tiquo and Vagaro, and 12 messages about them.");
    expect(exportMentionText(preview.exports[0]!)).toBe(`Included them: Mailing list · ${formatDate("2026-03-01T09:00:00Z")}`);
    expect(exportMentionText(preview.exports[1]!)).toMatch(/^May have included them: Backup/);
    expect(keepForgettingSentence(preview)).toBe(
      "If Tiquo or Vagaro sends something about them again, Clientele acknowledges it and doesn't keep it.",
    );
  });

  it("lists words as a sentence would", () => {
    expect(listWords([])).toBe("");
    expect(listWords(["Tiquo"])).toBe("Tiquo");
    expect(listWords(["Tiquo", "Vagaro", "Zupy"])).toBe("Tiquo, Vagaro and Zupy");
    expect(listWords(["Tiquo", "Vagaro"], "or")).toBe("Tiquo or Vagaro");
  });

  it("counts an erasure without saying who", () => {
    expect(erasureCounts(erasure())).toBe("1 customer, 3 records, 12 messages, 1 refused request");
    expect(erasureCounts(erasure({ people: 2, rejections: 0 }))).toBe("2 customers, 3 records, 12 messages");
  });

  it("says the retention rules plainly, and that they are off", () => {
    expect(retentionSentences({ inactive_months: null, rejections_days: null })).toEqual([
      "Off: Clientele keeps customers and refused requests until you forget them.",
    ]);
    expect(retentionSentences({ inactive_months: 24, rejections_days: 1 })).toEqual([
      "Customers with no activity for 24 months are forgotten.",
      "Refused requests older than 1 day are deleted.",
    ]);
  });

  it("says each connection's choice for deleted customers", () => {
    expect(forgetDeletedText("Tiquo", null)).toBe("Keep their history. Their page says they were deleted in Tiquo.");
    expect(forgetDeletedText("Tiquo", 0)).toBe("Forget them at once.");
    expect(forgetDeletedText("Tiquo", 30)).toBe("Forget them 30 days after Tiquo deletes them.");
  });

  it("accepts only whole numbers in range from a box", () => {
    expect(wholeNumber("24", 1, 100)).toBe(24);
    expect(wholeNumber(24, 1, 100)).toBe(24);
    expect(wholeNumber(" 7 ", 1, 100)).toBe(7);
    for (const bad of ["", "0", "2.5", "-3", "abc", "101", null, undefined]) expect(wholeNumber(bad, 1, 100)).toBeNull();
  });
});

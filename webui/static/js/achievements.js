// Achievements with their Mint button: disabled, with the API's reason beside it, until a
// wallet address is set and sync is on (what the device needs to ask the relay for a token).
import { api, dateTime, fill, h, title } from "./api.js";

const STATUS_WORDS = {
  pending: "Mint requested: waiting for the device to send it.",
  sent: "Mint request sent: waiting for the relay.",
  minted: "Minted",
};

const sentence = (text) => (text ? text.charAt(0).toUpperCase() + text.slice(1) + "." : "");

function item(a, statusBox) {
  const mint = a.mint || null;
  const name = a.title || title(a.kind);
  const row = h("li", { class: "achievement", dataset: { kind: a.kind } },
    h("div", {}, h("strong", {}, name), h("div", { class: "muted" }, `Earned ${dateTime(a.earned_at)}`)));
  if (!a.mintable) return row;
  if (mint && mint.status !== "failed") {
    row.append(h("span", {}, mint.status === "minted" && mint.token_id !== null
      ? `Minted as token #${mint.token_id}` : STATUS_WORDS[mint.status] || mint.status));
    return row;
  }
  const reasonId = `mint-reason-${a.id}`;
  const blocked = !a.can_mint;
  const button = h("button", { type: "button", class: "secondary", disabled: blocked,
    "aria-describedby": blocked ? reasonId : null }, mint ? "Mint again" : "Mint");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const result = await api(`/api/achievements/${encodeURIComponent(a.id)}/mint`, { method: "POST" });
      fill(statusBox, `Mint requested for ${name}.`);
      button.replaceWith(h("span", {}, STATUS_WORDS[result.status] || result.status));
    } catch (err) {
      button.disabled = false;
      fill(statusBox, sentence(err.message));
    }
  });
  const side = h("div", {}, button);
  if (blocked) side.append(h("p", { class: "hint", id: reasonId }, sentence(a.mint_unavailable)));
  if (mint && mint.error) side.append(h("p", { class: "error" }, `Last attempt failed: ${mint.error}`));
  row.append(side);
  return row;
}

/** Fill the list ``listId`` with ``achievements``; ``statusId`` gets mint results. */
export function showAchievements(listId, statusId, achievements, emptyText) {
  const list = document.getElementById(listId);
  const statusBox = document.getElementById(statusId);
  fill(list, achievements.length ? achievements.map((a) => item(a, statusBox))
    : h("li", { class: "muted" }, emptyText));
}

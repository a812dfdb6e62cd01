// The demo shop: browse the catalog, click items into a visit (real events through the
// public API) and watch the recommendations for the visit change after every click.
"use strict";

(() => {
  const { ApiError, el, randomId, number } = nextitem;
  const KEY_STORE = "nextitem-shop-key";
  const $ = (id) => document.getElementById(id);
  const PAGE = 20;      // catalog items per page
  const N_RECS = 10;    // recommendations shown
  const FALLBACKS = {
    new_session: "no clicks yet: the most popular items",
    no_known_items: "no click on a catalog item yet: the most popular items",
    store_unavailable: "the session store does not answer: popular items, without this visit",
  };

  const state = {
    session: randomId("demo-"),
    visit: [],               // item ids clicked, in order
    offset: 0,
    total: 0,
    categoryOf: new Map(),   // item id -> category (null: none), from GET /v1/items
    recsSeq: 0,              // answers to older requests are dropped
    queue: Promise.resolve(),
  };

  function say(text) { $("message").textContent = text || ""; }

  /** A /v1 call, with the shop's API key when the service asks for one (NEXTITEM_API_KEY). */
  async function call(path, options = {}) {
    const key = sessionStorage.getItem(KEY_STORE);
    const headers = key ? { "X-API-Key": key } : {};
    try {
      return await nextitem.call(path, { ...options, headers });
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        sessionStorage.removeItem(KEY_STORE);
        $("key-form").hidden = false;
      }
      throw err;
    }
  }

  function fail(err) { say(err.message); }

  /** Runs tasks one after another: clicks are posted in the order they were made. */
  function enqueue(task) {
    state.queue = state.queue.then(task).catch(fail);
    return state.queue;
  }

  function categoryChip(itemId) {
    const category = state.categoryOf.get(itemId);
    return el("span", { class: "chip", title: "category" },
      category === null || category === undefined ? "no category" : `category ${category}`);
  }

  function itemRow(item, extra = []) {
    const id = item.item_id;
    return el("li", { dataset: { itemId: id } },
      el("button", { type: "button", class: "quiet name", dataset: { action: "click" },
                     "aria-label": `Click item ${id}` }, `Item ${id}`),
      categoryChip(id),
      ...extra,
      el("button", { type: "button", class: "quiet", dataset: { action: "similar" },
                     "aria-label": `Items similar to item ${id}` }, "Similar"));
  }

  /** Learns the categories of items not seen yet (one lookup for all of them). */
  async function learnCategories(ids) {
    const missing = [...new Set(ids)].filter((id) => !state.categoryOf.has(id));
    if (!missing.length) return;
    const query = new URLSearchParams();
    for (const id of missing.slice(0, 100)) query.append("ids", id);
    const page = await call(`/v1/items?${query}`);
    for (const item of page.items) state.categoryOf.set(item.item_id, item.category);
    for (const id of missing) if (!state.categoryOf.has(id)) state.categoryOf.set(id, null);
  }

  // ---- the catalog ---------------------------------------------------------------------------

  async function loadCategories() {
    const list = await call("/v1/categories");
    const select = $("category");
    for (const c of list.categories) {
      select.append(el("option", { value: c.category }, `${c.category} (${c.n_items} items)`));
    }
  }

  async function loadCatalog() {
    const query = new URLSearchParams({ offset: state.offset, limit: PAGE, order: $("order").value });
    if ($("query").value.trim()) query.set("query", $("query").value.trim());
    if ($("category").value) query.set("category", $("category").value);
    const page = await call(`/v1/items?${query}`);
    state.total = page.total;
    for (const item of page.items) state.categoryOf.set(item.item_id, item.category);
    const rows = page.items.map((item) =>
      itemRow(item, [el("span", { class: "meta" }, `${number(item.popularity, 0)} clicks`)]));
    $("catalog").replaceChildren(...rows);
    const last = Math.min(state.offset + PAGE, page.total);
    $("catalog-count").textContent = page.total
      ? `Items ${state.offset + 1}–${last} of ${number(page.total, 0)}`
      : "No item matches.";
    $("prev").disabled = state.offset === 0;
    $("next").disabled = last >= page.total;
  }

  // ---- the visit and its recommendations -------------------------------------------------------

  function renderVisit() {
    $("session-id").textContent = state.session;
    $("visit-empty").hidden = state.visit.length > 0;
    $("visit").replaceChildren(...state.visit.map((id) => el("li", {}, `Item ${id} `, categoryChip(id))));
  }

  async function refreshRecs() {
    const seq = ++state.recsSeq;
    const diversity = $("diversity").value;
    const exclude = $("exclude-seen").checked;
    const query = new URLSearchParams({ n: N_RECS, diversity, exclude_seen: exclude });
    const recs = await call(`/v1/sessions/${encodeURIComponent(state.session)}/recommendations?${query}`);
    await learnCategories(recs.items.map((r) => r.item_id));
    if (seq !== state.recsSeq) return;  // a newer request is on its way
    $("model-version").textContent = recs.model_version;
    const badge = $("fallback");
    badge.hidden = !recs.fallback;
    badge.textContent = recs.fallback ? `fallback: ${FALLBACKS[recs.fallback] || recs.fallback}` : "";
    badge.dataset.reason = recs.fallback || "";
    const list = $("recs");
    list.replaceChildren(...recs.items.map((r) => itemRow(r, [
      el("span", { class: "meta", title: "score" }, `score ${number(r.score)}`),
      el("span", { class: "meta", title: "the interest vector that found it" },
        r.interest === null ? "popular" : `interest ${r.interest}`),
    ])));
    // what the list answers, for whoever waits on it (the browser tests)
    Object.assign(list.dataset, { visitLength: state.visit.length, diversity, excludeSeen: exclude,
                                  session: state.session });
    say("");
  }

  function click(itemId) {
    return enqueue(async () => {
      await call("/v1/events", { method: "POST",
        body: { session_id: state.session, item_id: itemId, event_id: randomId("e-") } });
      state.visit.push(itemId);
      await learnCategories([itemId]);
      renderVisit();
      await refreshRecs();
    });
  }

  async function showSimilar(itemId) {
    const answer = await call(`/v1/items/${encodeURIComponent(itemId)}/similar?n=${N_RECS}`);
    await learnCategories(answer.items.map((r) => r.item_id));
    $("similar-to").textContent = `Nearest to item ${itemId} in the model's item space:`;
    $("similar").replaceChildren(...answer.items.map((r) =>
      itemRow(r, [el("span", { class: "meta" }, `score ${number(r.score)}`)])));
    $("similar").dataset.itemId = itemId;
  }

  function newVisit() {
    return enqueue(async () => {
      state.session = randomId("demo-");
      state.visit = [];
      renderVisit();
      await refreshRecs();
    });
  }

  // ---- wiring --------------------------------------------------------------------------------

  document.querySelector("main").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const itemId = button.closest("li").dataset.itemId;
    if (button.dataset.action === "click") click(itemId);
    else showSimilar(itemId).catch(fail);
  });
  let typing;
  $("query").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.offset = 0; loadCatalog().catch(fail); }, 200);
  });
  $("catalog-form").addEventListener("submit", (e) => e.preventDefault());
  for (const id of ["category", "order"]) {
    $(id).addEventListener("change", () => { state.offset = 0; loadCatalog().catch(fail); });
  }
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadCatalog().catch(fail); });
  $("next").addEventListener("click", () => { state.offset += PAGE; loadCatalog().catch(fail); });
  $("diversity").addEventListener("input", () => { $("diversity-value").textContent = $("diversity").value; });
  $("diversity").addEventListener("change", () => enqueue(refreshRecs));
  $("exclude-seen").addEventListener("change", () => enqueue(refreshRecs));
  $("new-visit").addEventListener("click", newVisit);
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
    $("key-form").hidden = true;
    say("");
    start();
  });

  function start() {
    $("category").replaceChildren($("category").options[0]);
    loadCategories().catch(fail);
    loadCatalog().catch(fail);
    enqueue(refreshRecs);
  }

  renderVisit();
  start();
})();

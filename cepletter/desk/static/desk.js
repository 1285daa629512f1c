// The desk's page: draws the state the server sends, and sends back edits.
// The server holds the issue and saves every edit to issue.md; this page only
// keeps what the person is typing until the server has it.
"use strict";

(function () {
  const CSRF = document.querySelector('meta[name="csrf-token"]').content;
  const TEXT_DELAY = 150; // ms between saves while someone types
  let state = null;
  const pending = new Map(); // key -> edit, in the order made (a field's newer value replaces its older)
  let pendingBase = null; // the document version the pending edits were made on
  let inflight = false;
  let flushTimer = null;
  let opSeq = 0;
  const dirty = new Map(); // focus key -> value typed and not yet confirmed by the server
  const fieldErrors = new Map(); // focus key -> message of a refused edit
  let lastRefused = null;
  let lastFrame = null;
  const startPicks = []; // ticked on the start page, in order

  // ---------------------------------------------------------------- helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") el.textContent = value;
      else if (name === "value") el.value = value;
      else if (name === "checked") el.checked = !!value;
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        el.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return el;
  }

  function $(id) { return document.getElementById(id); }

  async function call(method, path, body) {
    const options = { method, headers: {}, cache: "no-store", credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRF-Token"] = CSRF;
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    const data = await response.json();
    return { ok: response.ok, data };
  }

  function say(text) { $("save-status").textContent = text; }

  function timeNow() { return new Date().toLocaleTimeString(); }

  // ---------------------------------------------------------------- sending edits

  function queue(key, edit, delay) {
    if (pending.size === 0) pendingBase = state.rev;
    pending.delete(key);
    pending.set(key, edit);
    say("Saving…");
    if (flushTimer === null) flushTimer = setTimeout(flush, delay);
  }

  function structural(edit) { queue("op" + (++opSeq), edit, 0); }

  function typed(key, edit, value) {
    dirty.set(key, value);
    fieldErrors.delete(key);
    queue(key, Object.assign({}, edit, { _key: key }), TEXT_DELAY);
  }

  async function flush() {
    flushTimer = null;
    if (inflight || pending.size === 0) return;
    inflight = true;
    const entries = [...pending.entries()];
    pending.clear();
    const base = pendingBase === null ? state.rev : pendingBase;
    pendingBase = null;
    const edits = entries.map(([, edit]) => { const e = Object.assign({}, edit); delete e._key; return e; });
    const sentValues = new Map(entries.filter(([, e]) => e._key).map(([k, e]) => [k, e.value]));
    let answer;
    try {
      answer = await call("POST", "api/edit", { rev: base, edits });
    } catch (err) {
      inflight = false;
      say("Not saved: the desk is not answering. Is `cepletter desk` still running?");
      for (const [k, e] of entries) if (!pending.has(k)) pending.set(k, e);
      pendingBase = base;
      setTimeout(flush, 1000);
      return;
    }
    inflight = false;
    const next = answer.data.state;
    if (!answer.ok) {
      showRefused(answer.data.error);
    } else if (next.conflicted) {
      dirty.clear();
      fieldErrors.clear();
      pending.clear();
      say("Not saved: conflict");
    } else {
      const refused = next.refused || [];
      const refusedIndexes = new Set(refused.map((r) => r.index));
      entries.forEach(([key, edit], index) => {
        if (!edit._key) return;
        if (refusedIndexes.has(index)) {
          const r = refused.find((x) => x.index === index);
          fieldErrors.set(key, r.message + (r.hint ? " " + r.hint : ""));
        } else if (dirty.get(key) === sentValues.get(key) && !pending.has(key)) {
          dirty.delete(key);
        }
      });
      const structuralRefusal = refused.find((r) => !entries[r.index][1]._key);
      if (structuralRefusal) showRefused(structuralRefusal);
      say(refused.length ? "Some edits were not saved" : "Saved " + timeNow());
      if (pending.size) pendingBase = next.rev;
    }
    apply(next, true);
    if (pending.size) flush();
  }

  function settled() {
    return new Promise((resolve) => {
      const check = () => (!inflight && pending.size === 0 ? resolve() : setTimeout(check, 50));
      if (flushTimer !== null) { clearTimeout(flushTimer); flushTimer = null; flush(); }
      check();
    });
  }

  function showRefused(error) {
    lastRefused = error;
    drawBanners();
  }

  // ---------------------------------------------------------------- drawing

  function apply(next, force) {
    if (!force && state && next.pv <= state.pv) return;
    state = next;
    draw();
  }

  function focusInfo() {
    const el = document.activeElement;
    if (!el || !el.dataset || !el.dataset.focus) return null;
    const info = { key: el.dataset.focus };
    if (typeof el.selectionStart === "number") {
      info.start = el.selectionStart;
      info.end = el.selectionEnd;
    }
    return info;
  }

  function restoreFocus(info) {
    if (!info) return;
    const el = document.querySelector(`[data-focus="${CSS.escape(info.key)}"]`);
    if (!el) return;
    if (document.activeElement !== el) el.focus({ preventScroll: true });
    if (info.start !== undefined && typeof el.setSelectionRange === "function") {
      try { el.setSelectionRange(info.start, info.end); } catch (e) { /* not a text field */ }
    }
  }

  function value(key, fromState) { return dirty.has(key) ? dirty.get(key) : fromState; }

  function draw() {
    const info = focusInfo();
    $("where").textContent = state.issue_id ? `issues/${state.issue_id}/issue.md in ${state.workspace}` : state.workspace;
    drawBanners();
    if (!state.issue_id) {
      $("start").hidden = false;
      $("desk").hidden = true;
      drawStart();
    } else {
      $("start").hidden = true;
      $("desk").hidden = false;
      drawIssue();
      drawPreview();
    }
    restoreFocus(info);
  }

  function drawBanners() {
    const box = $("banners");
    box.replaceChildren();
    if (!state) return;
    if (state.error) {
      box.append(h("div", { class: "banner error", role: "alert" },
        h("strong", { text: "The issue file does not load: " }), state.error.message,
        state.error.hint ? h("div", { class: "hint", text: state.error.hint }) : null,
        h("div", { class: "hint", text: "The desk shows it again as soon as the file is fixed. Nothing is saved meanwhile." })));
    }
    if (state.conflict) {
      box.append(h("div", { class: "banner conflict", role: "alert" },
        h("strong", { text: "Conflict: " }), state.conflict.message,
        h("div", { class: "hint", text: state.conflict.hint }),
        h("div", { class: "hint", text: "Your edits that were not saved:" }),
        h("ul", {}, state.conflict.yours.map((line) => h("li", {}, h("code", { text: line })))),
        h("button", { type: "button", onclick: () => post("dismiss", {}) }, "Dismiss")));
    }
    if (lastRefused) {
      const r = lastRefused;
      box.append(h("div", { class: "banner error", role: "alert" },
        h("strong", { text: "Not done: " }), r.message, r.hint ? h("div", { class: "hint", text: r.hint }) : null,
        h("button", { type: "button", onclick: () => { lastRefused = null; drawBanners(); } }, "Dismiss")));
    }
    if (state.notice) {
      box.append(h("div", { class: "banner notice", role: "status" }, state.notice,
        h("button", { type: "button", onclick: () => post("dismiss", {}) }, "Dismiss")));
    }
    for (const warning of state.warnings || []) {
      box.append(h("div", { class: "banner notice", role: "status", text: "Note: " + warning }));
    }
  }

  async function post(action, body) {
    let answer;
    try {
      answer = await call("POST", "api/" + action, body);
    } catch (err) {
      showRefused({ message: "the desk is not answering", hint: "Is `cepletter desk` still running?" });
      return null;
    }
    if (!answer.ok) showRefused(answer.data.error);
    else lastRefused = null;
    if (answer.data.state) apply(answer.data.state, true);
    return answer;
  }

  // ---------------------------------------------------------------- the start page

  function drawStart() {
    const start = state.start;
    if (!$("start-id").value) $("start-id").value = start.suggested_id;
    $("start-candidates").replaceChildren(candidateList(true));
    const existing = start.existing;
    $("start-existing").replaceChildren(existing.length ? h("div", { class: "existing" },
      h("h2", { class: "block-title", text: "Or open an issue" }),
      existing.slice().reverse().map((id) => h("button", { type: "button", onclick: () => post("open", { id }) }, "Open " + id))) : "");
  }

  $("start-draft").addEventListener("click", () => {
    post("draft", { id: $("start-id").value, title: $("start-title").value, picks: startPicks.slice() });
  });

  // ---------------------------------------------------------------- candidates

  const filters = { text: "", source: "", from: "" };

  function candidateList(onStart) {
    const all = state.candidates;
    const sources = [...new Set(all.map((c) => c.source))];
    const wrap = h("div", { class: "candidates" });
    if (state.candidate_problem) {
      wrap.append(h("div", { class: "banner error", role: "alert" }, state.candidate_problem.message,
        h("div", { class: "hint", text: state.candidate_problem.hint })));
    }
    const text = h("input", { type: "search", "aria-label": "Filter candidates", placeholder: "Filter by text",
      value: filters.text, "data-focus": "filter-text",
      oninput: (e) => { filters.text = e.target.value; draw(); } });
    const source = h("select", { "aria-label": "Source", "data-focus": "filter-source",
      onchange: (e) => { filters.source = e.target.value; draw(); } },
      h("option", { value: "", text: "All sources" }), sources.map((s) => h("option", { value: s, text: s })));
    source.value = filters.source;
    const from = h("input", { type: "date", "aria-label": "Candidates from", value: filters.from, "data-focus": "filter-from",
      onchange: (e) => { filters.from = e.target.value; draw(); } });
    const refresh = h("button", { type: "button", onclick: () => post("candidates", {}) }, "Read the sources again");
    wrap.append(h("div", { class: "row tight" }, text, source, h("label", {}, "From ", from), refresh));
    const needle = filters.text.trim().toLowerCase();
    const shown = all.filter((c) => (!needle || (c.title + " " + c.excerpt + " " + c.category).toLowerCase().includes(needle))
      && (!filters.source || c.source === filters.source) && (!filters.from || (c.date && c.date >= filters.from)));
    wrap.append(h("p", { class: "note", text: `${shown.length} of ${all.length} candidates (${state.candidate_reason || "the configured sources"}).` }));
    const list = h("ul", { class: "candidate-list" });
    for (const c of shown) {
      const ticked = onStart ? startPicks.includes(c.id) : c.in_issue;
      const box = h("input", { type: "checkbox", "aria-label": c.title, checked: ticked, "data-focus": "cand:" + c.id,
        onchange: (e) => {
          if (onStart) {
            const at = startPicks.indexOf(c.id);
            if (e.target.checked && at < 0) startPicks.push(c.id);
            if (!e.target.checked && at >= 0) startPicks.splice(at, 1);
            draw();
          } else {
            structural({ op: e.target.checked ? "add" : "remove", id: c.id });
          }
        } });
      const order = onStart && ticked ? h("span", { class: "pick-number", text: String(startPicks.indexOf(c.id) + 1) }) : null;
      list.append(h("li", { class: ticked ? "candidate ticked" : "candidate" },
        h("label", { class: "candidate-label" }, box, order,
          h("span", { class: "candidate-title", text: c.title })),
        h("div", { class: "meta", text: [c.date || "undated", c.source, c.category].filter(Boolean).join(" · ") }),
        c.excerpt ? h("div", { class: "excerpt", text: c.excerpt }) : null));
    }
    wrap.append(list);
    return wrap;
  }

  // ---------------------------------------------------------------- the issue

  function setField(id, key, field, fromState) {
    const el = $(id);
    if (document.activeElement !== el || !dirty.has(key)) el.value = value(key, fromState);
    el.classList.toggle("invalid", fieldErrors.has(key));
  }

  function drawIssue() {
    const issue = state.issue;
    $("issue-fields").disabled = !issue || !!state.error;
    if (!issue) return;
    setField("subject", "subject", "subject", issue.subject);
    setField("preheader", "preheader", "preheader", issue.preheader);
    $("preheader").placeholder = (state.preview && state.preview.inbox.preheader) || "A one-line teaser after the subject";
    setField("issue-title", "issue-title", "title", issue.title);
    setField("intro", "intro", "intro", issue.intro);
    $("preheader-reset").disabled = issue.preheader_follows;
    $("preheader-note").textContent = issue.preheader_follows
      ? "Follows the items’ titles until you edit it."
      : "Written by hand. Reset makes it follow the items’ titles again.";
    $("intro-look").innerHTML = issue.intro_html; // Markdown rendered by the server with raw HTML off
    $("use-sections").checked = !issue.single;
    $("add-section").hidden = issue.single;
    drawSections(issue);
    $("candidates").replaceChildren(candidateList(false));
  }

  function fieldError(key) {
    return fieldErrors.has(key) ? h("p", { class: "field-error", role: "alert", text: fieldErrors.get(key) }) : null;
  }

  function drawSections(issue) {
    const box = $("sections");
    const sections = issue.sections;
    const nodes = [];
    if (!sections.some((s) => s.items.length)) {
      nodes.push(h("p", { class: "empty", text: "No items yet: tick candidates below to add them." }));
    }
    sections.forEach((section, sIndex) => {
      const list = h("ol", { class: "items", "data-section": section.key });
      section.items.forEach((item, index) => list.append(itemCard(item, section, sections, sIndex, index)));
      if (!section.items.length) {
        list.append(h("li", { class: "drop-hint", text: "No items: drag items here, or use “Move to section…” on an item." }));
      }
      const head = issue.single ? null : h("div", { class: "section-head" },
        h("input", { class: "heading", "aria-label": "Section heading: " + section.heading, "data-focus": "heading:" + section.key,
          value: value("heading:" + section.key, section.heading),
          oninput: (e) => typed("heading:" + section.key, { op: "rename_section", section: section.key, heading: e.target.value }, e.target.value) }),
        h("button", { type: "button", "aria-label": "Move section up: " + section.heading, "data-focus": "sup:" + section.key,
          disabled: sIndex === 0, onclick: () => structural({ op: "move_section", section: section.key, by: -1 }) }, "Up"),
        h("button", { type: "button", "aria-label": "Move section down: " + section.heading, "data-focus": "sdown:" + section.key,
          disabled: sIndex === sections.length - 1, onclick: () => structural({ op: "move_section", section: section.key, by: 1 }) }, "Down"),
        h("button", { type: "button", "aria-label": "Delete section: " + section.heading,
          onclick: () => structural({ op: "delete_section", section: section.key }) }, "Delete section"));
      nodes.push(h("section", { class: issue.single ? "section single" : "section", "aria-label": issue.single ? "Items" : "Section: " + section.heading },
        head, fieldError("heading:" + section.key), list));
    });
    box.replaceChildren(...nodes);
    if (window.Sortable) {
      box.querySelectorAll("ol.items").forEach((list) => {
        window.Sortable.create(list, {
          // Pointer events rather than the browser's own drag and drop: the same on a tablet's touch screen.
          group: "items", handle: ".handle", draggable: "li.item", animation: 120, forceFallback: true,
          onEnd: (evt) => {
            if (evt.from === evt.to && evt.oldIndex === evt.newIndex) return;
            structural({ op: "move_to", id: evt.item.dataset.id, section: evt.to.dataset.section, index: evt.newDraggableIndex });
          },
        });
      });
    }
  }

  function itemCard(item, section, sections, sIndex, index) {
    const t = item.title;
    const first = sIndex === 0 && index === 0;
    const lastSection = sections.length - 1 - [...sections].reverse().findIndex((s) => s.items.length);
    const last = sIndex === lastSection && index === section.items.length - 1;
    const key = (name) => `${name}:${item.id}`;
    const input = (name, label, extra) => h("div", { class: "field" },
      h("label", { text: label }),
      h(name === "summary" ? "textarea" : "input", Object.assign({
        "aria-label": `${label}: ${t}`, "data-focus": key(name), value: value(key(name), item[name]),
        class: fieldErrors.has(key(name)) ? "invalid" : null,
        oninput: (e) => typed(key(name), { op: "item", id: item.id, field: name, value: e.target.value }, e.target.value),
      }, extra || {})),
      fieldError(key(name)));
    const move = h("select", { "aria-label": "Move to section: " + t, "data-focus": key("moveto"),
      onchange: (e) => { if (e.target.value) structural({ op: "move_to", id: item.id, section: e.target.value, index: null }); } },
      h("option", { value: "", text: "Move to section…" }),
      sections.filter((s) => s.key !== section.key).map((s) => h("option", { value: s.key, text: s.heading || "(no heading)" })));
    return h("li", { class: "item", "data-id": item.id },
      h("div", { class: "item-head" },
        h("span", { class: "handle", title: "Drag to reorder", "aria-hidden": "true", text: "⠿" }),
        h("span", { class: "item-name", text: t }),
        h("span", { class: "item-buttons" },
          h("button", { type: "button", "aria-label": "Move up: " + t, "data-focus": key("up"), disabled: first,
            onclick: () => structural({ op: "move", id: item.id, by: -1 }) }, "Move up"),
          h("button", { type: "button", "aria-label": "Move down: " + t, "data-focus": key("down"), disabled: last,
            onclick: () => structural({ op: "move", id: item.id, by: 1 }) }, "Move down"),
          state.issue.single || sections.length < 2 ? null : move,
          h("button", { type: "button", "aria-label": "Remove: " + t, class: "danger",
            onclick: () => structural({ op: "remove", id: item.id }) }, "Remove"))),
      input("title", "Title"),
      input("summary", "Summary", { rows: 3 }),
      item.summary_is_html ? h("p", { class: "note", text: "This summary is HTML written by hand; what you type here replaces it (Markdown)." }) : null,
      h("details", { class: "more-fields" },
        h("summary", { text: "Image, category, link, date" }),
        input("image", "Image"), input("category", "Category"), input("link", "Link"), input("date", "Date")));
  }

  // simple text fields of the issue
  [["subject", "subject"], ["preheader", "preheader"], ["issue-title", "title"], ["intro", "intro"]].forEach(([id, field]) => {
    $(id).addEventListener("input", (e) => typed(id, { op: "set", field, value: e.target.value }, e.target.value));
  });
  $("preheader-reset").addEventListener("click", () => { dirty.delete("preheader"); structural({ op: "reset_preheader" }); });
  $("use-sections").addEventListener("change", (e) => structural({ op: "sections", on: e.target.checked }));
  $("add-section-button").addEventListener("click", () => {
    const heading = $("new-section").value.trim();
    if (!heading) { showRefused({ message: "a section needs a heading", hint: "Type its name first." }); return; }
    structural({ op: "add_section", heading });
    $("new-section").value = "";
  });
  $("new-section").addEventListener("keydown", (e) => { if (e.key === "Enter") $("add-section-button").click(); });

  // the intro's formatting toolbar
  document.querySelectorAll("[data-md]").forEach((button) => button.addEventListener("click", () => {
    const area = $("intro");
    const { selectionStart: a, selectionEnd: b, value: text } = area;
    const chosen = text.slice(a, b);
    let insert;
    let caret;
    switch (button.dataset.md) {
      case "bold": insert = `**${chosen || "bold text"}**`; break;
      case "italic": insert = `_${chosen || "italic text"}_`; break;
      case "link": {
        const url = window.prompt("Link address (https://…)", "https://");
        if (!url) return;
        insert = `[${chosen || "link text"}](${url})`;
        break;
      }
      default: {
        const lines = (chosen || "list item").split("\n");
        const before = a > 0 && text[a - 1] !== "\n" ? "\n" : "";
        insert = before + lines.map((line) => (line.startsWith("- ") ? line : "- " + line)).join("\n");
      }
    }
    area.setRangeText(insert, a, b, "end");
    caret = area.selectionEnd;
    area.focus();
    area.setSelectionRange(caret, caret);
    area.dispatchEvent(new Event("input", { bubbles: true }));
  }));

  // ---------------------------------------------------------------- the preview

  function previewHtml(html) {
    const dark = $("dark").checked;
    const imagesOff = $("images-off").checked;
    let page = html;
    if (dark) page = page.replace(/prefers-color-scheme\s*:\s*dark/gi, "min-width: 0px");
    const doc = new DOMParser().parseFromString(page, "text/html"); // parsing runs no script
    doc.querySelectorAll("script").forEach((s) => s.remove());
    if (imagesOff) doc.querySelectorAll("img").forEach((img) => { img.removeAttribute("src"); img.removeAttribute("srcset"); });
    const base = doc.createElement("base");
    base.setAttribute("target", "_blank"); // a link opens in a new tab, not inside the frame
    doc.head.prepend(base);
    return "<!DOCTYPE html>\n" + doc.documentElement.outerHTML;
  }

  function drawPreview() {
    const p = state.preview;
    if (!p) return;
    $("preview-error").hidden = !p.error;
    if (p.error) $("preview-error").textContent = `The preview could not be built: ${p.error.message} ${p.error.hint}`;
    const inbox = $("inbox");
    inbox.querySelector(".inbox-from").textContent = (p.inbox.from || "").replace(/\s*<[^>]*>\s*$/, "");
    inbox.querySelector(".inbox-subject").textContent = p.inbox.subject || "";
    inbox.querySelector(".inbox-preheader").textContent = p.inbox.preheader || "";
    $("preview-size").textContent = p.size ? `HTML ${p.size}, shown as ${p.recipient} (${p.recipient_source})` : "";
    const showAs = $("show-as");
    const options = state.recipients.map((r) => h("option", { value: r.email, text: r.name ? `${r.name} <${r.email}>` : r.email }));
    if (!state.recipients.some((r) => r.email === p.recipient) && p.recipient) options.unshift(h("option", { value: p.recipient, text: p.recipient }));
    showAs.replaceChildren(...options);
    showAs.value = p.recipient;
    const width = document.querySelector('input[name="width"]:checked').value;
    const frame = $("frame");
    const textMode = $("text-version").checked;
    frame.hidden = textMode;
    $("text").hidden = !textMode;
    $("text").textContent = p.text;
    frame.style.width = width + "px";
    frame.setAttribute("width", width);
    const wanted = previewHtml(p.html);
    if (wanted !== lastFrame) {
      let scroll = 0;
      try { scroll = frame.contentWindow ? frame.contentWindow.scrollY : 0; } catch (e) { scroll = 0; }
      frame.addEventListener("load", () => {
        try { frame.contentWindow.scrollTo(0, scroll); } catch (e) { /* nothing to restore */ }
      }, { once: true });
      frame.srcdoc = wanted;
      lastFrame = wanted;
    }
    drawFindings(p.findings);
    drawReview(p.review);
  }

  function drawFindings(findings) {
    const list = $("findings");
    if (!findings.length) {
      list.replaceChildren(h("li", { class: "finding ok", text: "No problems found." }));
      return;
    }
    list.replaceChildren(...findings.map((f) => {
      let go = null;
      if (f.target && f.target.field) {
        const id = f.target.field;
        go = h("button", { type: "button", class: "link", onclick: () => $(id).focus() }, "Go to " + (id === "subject" ? "Subject" : "Preheader"));
      } else if (f.target && f.target.item) {
        go = h("button", { type: "button", class: "link", onclick: () => {
          const card = document.querySelector(`li.item[data-id="${CSS.escape(f.target.item)}"]`);
          if (card) { card.scrollIntoView({ block: "center" }); card.querySelector("input").focus({ preventScroll: true }); }
        } }, "Go to the item: " + f.target.title);
      }
      return h("li", { class: "finding " + f.level },
        h("strong", { text: f.level === "error" ? "Error: " : "Warning: " }), f.message, " ", go,
        h("div", { class: "hint", text: f.hint }));
    }));
  }

  function drawReview(review) {
    if (!review || !review.command) return;
    $("review-status").textContent = (review.reviewed ? "Reviewed: " : "Not reviewed yet: ") +
      (review.reviewed ? review.status : "send a test or approve this content.") +
      (review.needed ? "" : " (The Maildir transport needs no review; SMTP does.)");
    $("review-status").className = review.reviewed ? "review-status ok" : "review-status";
    $("send-command").textContent = review.command;
  }

  ["dark", "images-off", "text-version"].forEach((id) => $(id).addEventListener("change", drawPreview));
  document.querySelectorAll('input[name="width"]').forEach((r) => r.addEventListener("change", drawPreview));
  $("show-as").addEventListener("change", (e) => post("recipient", { email: e.target.value }));

  // ---------------------------------------------------------------- test send and approval

  $("send-test").addEventListener("click", async () => {
    const button = $("send-test");
    button.disabled = true;
    $("send-result").textContent = "Sending…";
    await settled(); // the test goes out with the last edit saved
    const answer = await post("send-test", { addresses: $("test-addresses").value });
    button.disabled = false;
    if (!answer) { $("send-result").textContent = ""; return; }
    if (!answer.ok) { $("send-result").textContent = "Not sent: " + answer.data.error.message; return; }
    const r = answer.data.result;
    const parts = [];
    if (r.sent.length) parts.push(`Test sent to ${r.sent.join(", ")} (${r.where}).`);
    for (const f of r.failures) parts.push(`${f.email}: ${f.status}: ${f.reply}`);
    $("send-result").textContent = parts.join(" ");
  });

  $("approve").addEventListener("click", async () => {
    await settled();
    const answer = await post("approve", { by: $("reviewer").value });
    if (answer && answer.ok) $("send-result").textContent = `Approved by ${answer.data.result.by}.`;
  });

  // ---------------------------------------------------------------- start, and follow the file

  async function watch() {
    let seen = state.pv;
    for (;;) {
      try {
        const answer = await call("GET", `api/wait?pv=${Math.max(seen, state.pv)}`);
        seen = Math.max(seen, answer.data.pv);
        // While edits are on their way their answer brings the newer state (or the conflict).
        if (!inflight && pending.size === 0) apply(answer.data, false);
      } catch (err) {
        say("The desk is not answering. Is `cepletter desk` still running?");
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  call("GET", "api/state").then((answer) => {
    apply(answer.data, true);
    say("");
    document.body.dataset.ready = "true";
    watch();
  });
})();

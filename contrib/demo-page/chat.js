// contrib/demo-page/chat.js - the demo chat, on the official Socket.IO
// browser client, against siogate's chat plugin (plugins/chat.c; its events
// are in docs/plugins.md). Plain script, no build step.
//
// Every user-supplied string reaches the page through textContent, never as
// HTML. The connection badge's data-state is one of offline, polling,
// websocket, reconnecting (tests/integration/browser.test.mjs reads it).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const MAX_IMAGE = 512 * 1024; // the chat plugin's limit
  const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];

  if (typeof io !== "function") {
    $("login").hidden = true;
    $("noclient").hidden = false;
    return;
  }

  // rooms: name -> {log: <ol> of its messages, members: [nick], unread}
  const rooms = new Map();
  let current = null;
  let nick = "";
  let connectedOnce = false;

  const socket = io("/chat", { autoConnect: false });

  // ---------------------------------------------------------------- badge
  function badge(state, text) {
    const b = $("badge");
    b.dataset.state = state;
    b.textContent = text || state;
  }
  socket.io.on("open", () => {
    const engine = socket.io.engine;
    badge(engine.transport.name);
    engine.on("upgrade", (t) => badge(t.name));
  });
  socket.io.on("reconnect_attempt", (n) => badge("reconnecting", `reconnecting (${n})`));
  socket.on("disconnect", (reason) => {
    if (socket.active) badge("reconnecting");
    else badge("offline", "disconnected");
    for (const name of rooms.keys()) system(name, `connection lost (${reason})`);
  });
  socket.on("connect_error", () => {
    if (socket.active) badge("reconnecting");
  });

  // ---------------------------------------------------------------- view
  function time(ms) {
    const t = document.createElement("time");
    const d = new Date(typeof ms === "number" ? ms : Date.now());
    t.dateTime = d.toISOString();
    t.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return t;
  }

  function append(room, li) {
    const r = rooms.get(room);
    if (!r) return;
    r.log.append(li);
    if (room === current) {
      const box = $("messages");
      box.scrollTop = box.scrollHeight;
    } else if (!li.classList.contains("system")) {
      r.unread++;
      drawRooms();
    }
  }

  function system(room, text, error) {
    const li = document.createElement("li");
    li.className = error ? "system error" : "system";
    li.textContent = text;
    append(room, li);
  }

  // a message: from someone (nick), or from the server (no nick: a
  // `siogate emit` from a shell, or any program using the CLI)
  function message(room, from, ms, body) {
    const li = document.createElement("li");
    const who = document.createElement("span");
    who.className = "who";
    if (from === undefined || from === null) {
      li.className = "server";
      who.textContent = "from the server";
    } else {
      li.className = from === nick ? "msg mine" : "msg";
      who.textContent = from;
    }
    who.append(time(ms));
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.append(body);
    li.append(who, bubble);
    append(room, li);
  }

  function drawRooms() {
    const ul = $("rooms");
    ul.replaceChildren();
    for (const [name, r] of rooms) {
      const li = document.createElement("li");
      li.dataset.room = name;
      if (name === current) li.className = "current";
      const n = document.createElement("span");
      n.className = "name";
      n.textContent = name;
      li.append(n);
      if (r.unread) {
        const u = document.createElement("span");
        u.className = "unread";
        u.textContent = String(r.unread);
        li.append(u);
      }
      li.addEventListener("click", () => show(name));
      ul.append(li);
    }
  }

  function drawMembers() {
    const r = current && rooms.get(current);
    const ul = $("members");
    ul.replaceChildren();
    $("members-room").textContent = current ? "#" + current : "";
    $("members-count").textContent = r ? `(${r.members.length})` : "";
    if (!r) return;
    for (const m of [...r.members].sort((a, b) => a.localeCompare(b))) {
      const li = document.createElement("li");
      li.textContent = m;
      if (m === nick) li.className = "me";
      ul.append(li);
    }
  }

  // each room has its own <ol> in #messages; only the current one shows
  function show(name) {
    current = rooms.has(name) ? name : null;
    for (const [n, r] of rooms) r.log.hidden = n !== current;
    $("room-title").textContent = current || "no room: join one";
    $("leave").disabled = !current;
    $("send").disabled = !current;
    if (current) {
      rooms.get(current).unread = 0;
      const box = $("messages");
      box.scrollTop = box.scrollHeight;
    }
    drawRooms();
    drawMembers();
  }

  // ---------------------------------------------------------------- actions
  function join(name, rejoin) {
    socket.emit("join", name, (res) => {
      if (!res || !res.ok) {
        if (current) system(current, `could not join #${name}: ${res ? res.error : "no answer"}`, true);
        return;
      }
      let r = rooms.get(name);
      if (!r) {
        r = { log: document.createElement("ol"), members: [], unread: 0 };
        r.log.className = "log";
        r.log.dataset.room = name;
        r.log.hidden = true;
        $("messages").append(r.log);
        rooms.set(name, r);
      }
      r.members = res.members;
      if (!rejoin) show(name);
      system(name, rejoin ? `back in #${name}` : `you joined #${name}`);
      drawRooms();
      drawMembers();
    });
  }

  function leave(name) {
    socket.emit("leave", name, (res) => {
      if (!res || !res.ok) {
        system(name, `could not leave: ${res ? res.error : "no answer"}`, true);
        return;
      }
      rooms.get(name).log.remove();
      rooms.delete(name);
      show(rooms.size ? [...rooms.keys()][0] : null);
    });
  }

  function sendImage(file) {
    const room = current;
    if (!room || !file) return;
    if (!IMAGE_TYPES.includes(file.type)) {
      system(room, `${file.name}: not a PNG, JPEG, GIF or WebP image`, true);
      return;
    }
    if (file.size > MAX_IMAGE) {
      system(room, `${file.name}: ${Math.ceil(file.size / 1024)} KB, the limit is 512 KB`, true);
      return;
    }
    file.arrayBuffer().then((data) => {
      // an ArrayBuffer travels as a binary attachment
      socket.emit("image", { room, type: file.type, data }, (res) => {
        if (!res || !res.ok) system(room, `image refused: ${res ? res.error : "no answer"}`, true);
      });
    });
  }

  // ---------------------------------------------------------------- events
  socket.on("connect", () => {
    socket.emit("nick", nick, (res) => {
      if (!res || !res.ok) {
        $("login-error").textContent = res ? res.error : "no answer";
        return;
      }
      $("login").hidden = true;
      $("chat").hidden = false;
      $("me").hidden = false;
      $("me").textContent = nick;
      if (!connectedOnce) {
        connectedOnce = true;
        join("lobby", false);
      } else {
        // a new connection is a new socket: the server forgot our rooms
        for (const name of rooms.keys()) join(name, true);
      }
    });
  });

  socket.on("said", (m) => {
    if (!m || typeof m.room !== "string" || !rooms.has(m.room)) return;
    message(m.room, m.nick, m.time, document.createTextNode(String(m.text)));
  });

  socket.on("image", (m) => {
    if (!m || typeof m.room !== "string" || !rooms.has(m.room)) return;
    if (!IMAGE_TYPES.includes(m.type) || !(m.data instanceof ArrayBuffer)) return;
    const img = document.createElement("img");
    img.alt = `image from ${m.nick}`;
    img.src = URL.createObjectURL(new Blob([m.data], { type: m.type }));
    message(m.room, m.nick, m.time, img);
  });

  socket.on("joined", (m) => {
    const r = m && rooms.get(m.room);
    if (!r) return;
    r.members.push(m.nick);
    system(m.room, `${m.nick} joined`);
    if (m.room === current) drawMembers();
  });

  socket.on("left", (m) => {
    const r = m && rooms.get(m.room);
    if (!r) return;
    const i = r.members.indexOf(m.nick);
    if (i >= 0) r.members.splice(i, 1);
    system(m.room, m.reason ? `${m.nick} left (${m.reason})` : `${m.nick} left`);
    if (m.room === current) drawMembers();
  });

  // ---------------------------------------------------------------- forms
  $("nick").value = localStorage.getItem("siogate-demo-nick") || "";
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    nick = $("nick").value.trim();
    if (!nick) return;
    localStorage.setItem("siogate-demo-nick", nick);
    $("login-error").textContent = "";
    badge("offline", "connecting…");
    socket.connect();
  });
  $("join").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("room").value.trim().replace(/^#/, "");
    $("room").value = "";
    if (!name) return;
    if (rooms.has(name)) show(name);
    else join(name, false);
  });
  $("leave").addEventListener("click", () => current && leave(current));
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value;
    if (!text.trim() || !current) return;
    const room = current;
    socket.emit("say", { room, text }, (res) => {
      if (!res || !res.ok) system(room, `not sent: ${res ? res.error : "no answer"}`, true);
    });
    $("text").value = "";
  });
  $("file").addEventListener("change", () => {
    sendImage($("file").files[0]);
    $("file").value = "";
  });
})();

/* loket web chat client: renders the citizen's conversation and speaks the
 * /ws/chat protocol (subprotocol "loket-chat", see docs/webchat.md).
 *
 * Everything the citizen or the server wrote is put on the page as text
 * (textContent, text nodes); links are built as <a> elements, and only for
 * http and https addresses. The transcript and the session id live in
 * localStorage so a reload shows the same conversation; the hello frame's
 * "since" asks the server only for what this page has not seen, and messages
 * are deduplicated by seq. While the socket is down, what the citizen sends is
 * kept in a local queue (persisted too) and sent after the reconnect. Each
 * message carries a client id, so one that was sent just before a connection
 * dropped and got no answer can be sent again: the server ignores a repeated
 * id. */
(function () {
	'use strict';

	/* ---- labels (Bahasa Indonesia) ---- */

	var T = {
		office: 'Layanan Perizinan',
		connecting: 'Menghubungkan…',
		reconnecting: 'Menghubungkan ulang…',
		reconnectingQueued: 'Menghubungkan ulang… pesan Anda akan dikirim setelah tersambung.',
		online: 'Terhubung',
		queued: function (n) {
			return n > 0 ? 'Menunggu petugas… (antrean ke-' + n + ')' : 'Menunggu petugas…';
		},
		assigned: 'Petugas telah bergabung',
		queuedNote: 'Permintaan Anda diteruskan ke petugas. Mohon tunggu sebentar.',
		backToBot: 'Percakapan dengan petugas selesai. Anda kembali dilayani asisten otomatis.',
		newSession: 'Sesi sebelumnya sudah berakhir. Percakapan baru dimulai.',
		pending: 'Menunggu koneksi…',
		tooLong: function (bytes, max) {
			return 'Pesan terlalu panjang (' + bytes.toLocaleString('id-ID') + ' byte). Batasnya ' +
				max.toLocaleString('id-ID') + ' byte: mohon persingkat atau kirim dalam beberapa bagian.';
		},
		error: 'Terjadi kesalahan. Silakan coba lagi.',
		errors: {
			too_long: 'Pesan terlalu panjang dan tidak terkirim. Mohon persingkat.',
			busy: 'Layanan sedang sibuk. Pesan Anda akan dikirim ulang sebentar lagi.',
			unavailable: 'Layanan sedang tidak tersedia. Pesan Anda akan dikirim ulang sebentar lagi.',
			bad_request: 'Pesan tidak dapat diproses.'
		},
		who: { me: 'Anda', bot: 'Asisten', agent: 'Petugas', note: 'Info' },
		chips: 'Pilihan cepat',
		form: 'Unduh formulir',
		restartAsk: 'Mulai percakapan baru? Riwayat chat di perangkat ini akan dihapus.'
	};

	var KEY = 'loket.chat.';
	var MAX_BYTES = 4096;      /* longest message the page sends, in UTF-8 bytes */
	var MAX_LOG = 300;         /* transcript entries kept in localStorage */
	var MAX_BUTTONS = 10;
	var BACKOFF_FIRST = 1000;
	var BACKOFF_MAX = 30000;
	var RESEND_WINDOW = 30000; /* ms: a message the server did not answer within it counts as delivered */
	var RETRY_MS = 3000;       /* after "busy" or "unavailable" */
	var INPUT_MAX_PX = 160;

	var $ = function (id) { return document.getElementById(id); };
	var el = {
		office: $('office'), status: $('status'), scroller: $('scroller'), log: $('log'),
		form: $('composer'), input: $('input'), note: $('note'), restart: $('restart')
	};

	/* ---- localStorage, which may be missing, full or forbidden ---- */

	var store = {
		get: function (k) {
			try { return window.localStorage.getItem(KEY + k); } catch (e) { return null; }
		},
		set: function (k, v) {
			try { window.localStorage.setItem(KEY + k, v); } catch (e) { /* keep working in memory */ }
		},
		del: function (k) {
			try { window.localStorage.removeItem(KEY + k); } catch (e) { /* nothing to remove */ }
		}
	};

	/* ---- state ---- */

	/* An entry: {k: 'me'|'bot'|'agent'|'note', t: text, s: seq (server messages),
	 * b: [{id, title}] (buttons), f: {title, url} (form), q: frame not yet known
	 * to have arrived, w: when q was written to a socket (ms)} */
	var entries = [];
	var nodes = new Map();   /* entry -> its <li> */
	var seen = new Map();    /* seq -> text, for dedupe */
	var maxSeq = 0;
	var outbox = [];         /* entries whose q is not sent yet, oldest first */
	var inflight = [];       /* entries sent on this socket and not answered yet */
	var session = store.get('session') || '';
	var convState = store.get('state') || 'bot';
	var queuePos = 0;
	var ws = null;
	var connected = false;
	var attempt = 0;
	var timer = null;
	var retryTimer = null;
	var chipsNode = null;
	var finePointer = window.matchMedia ? window.matchMedia('(pointer: fine)') : null;
	var helloSession = '';

	/* ---- text and links ---- */

	var URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
	var encoder = typeof TextEncoder === 'function' ? new TextEncoder() : null;

	function utf8Bytes(s) {
		if (encoder) return encoder.encode(s).length;
		return unescape(encodeURIComponent(s)).length;
	}

	/* The href for an address a citizen may follow, or null: http and https only. */
	function safeHref(s) {
		if (typeof s !== 'string') return null;
		try {
			var u = new URL(s);
			if (u.protocol === 'http:' || u.protocol === 'https:') return u.href;
		} catch (e) { /* not an address */ }
		return null;
	}

	/* Trailing punctuation belongs to the sentence, not to the address; a closing
	 * bracket stays when the address opened one. */
	function trimUrl(u) {
		for (;;) {
			var c = u.charAt(u.length - 1);
			if ('.,;:!?*\'»”’'.indexOf(c) >= 0) { u = u.slice(0, -1); continue; }
			if (c === ')' && u.indexOf('(') < 0) { u = u.slice(0, -1); continue; }
			if (c === ']' && u.indexOf('[') < 0) { u = u.slice(0, -1); continue; }
			return u;
		}
	}

	function link(href, label) {
		var a = document.createElement('a');
		a.href = href;
		a.textContent = label;
		a.target = '_blank';
		a.rel = 'noopener noreferrer nofollow';
		return a;
	}

	/* Appends text to parent as text nodes, with http(s) addresses as links. */
	function appendLinks(parent, text) {
		var last = 0;
		var m;
		URL_RE.lastIndex = 0;
		while ((m = URL_RE.exec(text)) !== null) {
			var url = trimUrl(m[0]);
			var href = safeHref(url);
			if (!href) continue;
			if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
			parent.appendChild(link(href, url));
			last = m.index + url.length;
			URL_RE.lastIndex = last;
		}
		if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
	}

	/* WhatsApp-style *bold*, which the office's answers use: the asterisks go,
	 * the words between them go in a <strong>. */
	var BOLD_RE = /(^|[\s(\[{"'“‘])\*(\S(?:[^*\n]*\S)?)\*(?=$|[\s.,;:!?)\]}"'”’])/g;

	/* Appends untrusted text to parent: text nodes, <strong> and <a> only. */
	function appendText(parent, text) {
		var last = 0;
		var m;
		BOLD_RE.lastIndex = 0;
		while ((m = BOLD_RE.exec(text)) !== null) {
			var start = m.index + m[1].length;
			appendLinks(parent, text.slice(last, start));
			var strong = document.createElement('strong');
			appendLinks(strong, m[2]);
			parent.appendChild(strong);
			last = start + m[2].length + 2;
		}
		appendLinks(parent, text.slice(last));
	}

	/* ---- rendering ---- */

	function nearBottom() {
		var s = el.scroller;
		return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
	}

	function scrollDown() {
		el.scroller.scrollTop = el.scroller.scrollHeight;
	}

	function clearChips() {
		if (chipsNode && chipsNode.parentNode) chipsNode.parentNode.removeChild(chipsNode);
		chipsNode = null;
	}

	function renderChips(li, buttons) {
		clearChips();
		if (!buttons || !buttons.length) return;
		var box = document.createElement('div');
		box.className = 'chips';
		box.setAttribute('role', 'group');
		box.setAttribute('aria-label', T.chips);
		buttons.forEach(function (b) {
			var btn = document.createElement('button');
			btn.type = 'button';
			btn.className = 'chip';
			btn.textContent = b.title;
			btn.addEventListener('click', function () { sendButton(b); });
			box.appendChild(btn);
		});
		li.appendChild(box);
		chipsNode = box;
	}

	function markPending(li, pending) {
		var meta = li.querySelector('.msg__meta');
		li.classList.toggle('msg--pending', pending);
		if (pending && !meta) {
			meta = document.createElement('span');
			meta.className = 'msg__meta';
			meta.textContent = T.pending;
			li.appendChild(meta);
		} else if (!pending && meta) {
			li.removeChild(meta);
		}
	}

	function render(entry) {
		var li = document.createElement('li');
		li.className = 'msg msg--' + entry.k;
		if (entry.s) li.dataset.seq = String(entry.s);

		var who = document.createElement('span');
		who.className = entry.k === 'agent' ? 'msg__who' : 'msg__who sr-only';
		who.textContent = T.who[entry.k] + (entry.k === 'agent' ? '' : ': ');
		li.appendChild(who);

		var bubble = document.createElement('div');
		bubble.className = 'bubble';
		appendText(bubble, entry.t);
		if (entry.f) {
			var p = document.createElement('div');
			p.className = 'bubble__form';
			p.appendChild(link(entry.f.url, entry.f.title || T.form));
			bubble.appendChild(p);
		}
		li.appendChild(bubble);
		if (entry.q && !entry.w) markPending(li, true);
		el.log.appendChild(li);
		nodes.set(entry, li);
		return li;
	}

	function save() {
		var keep = entries.length > MAX_LOG ? entries.slice(entries.length - MAX_LOG) : entries;
		store.set('log', JSON.stringify(keep));
	}

	function remember(entry) {
		if (entry.s) {
			seen.set(entry.s, entry.t);
			if (entry.s > maxSeq) maxSeq = entry.s;
		}
	}

	/* Adds an entry to the transcript, the page and the stored copy. */
	function add(entry, persist) {
		var stick = entry.k === 'me' || nearBottom();
		if (persist !== false) entries.push(entry);
		remember(entry);
		var li = render(entry);
		if (entry.k === 'bot' || entry.k === 'agent') renderChips(li, entry.b);
		else if (entry.k === 'me') clearChips();
		if (persist !== false) save();
		if (stick) scrollDown();
		return li;
	}

	function note(text, persist) {
		add({ k: 'note', t: text }, persist);
	}

	function setOffice(name) {
		el.office.textContent = name;
		document.title = name + ' — Chat';
	}

	function renderStatus() {
		var kind, text;
		if (!connected) {
			kind = 'offline';
			text = attempt > 0 ? (outbox.length ? T.reconnectingQueued : T.reconnecting) : T.connecting;
		} else if (convState === 'queued') {
			kind = 'queued';
			text = T.queued(queuePos);
		} else if (convState === 'assigned') {
			kind = 'assigned';
			text = T.assigned;
		} else {
			kind = 'online';
			text = T.online;
		}
		if (el.status.dataset.kind !== kind || el.status.textContent !== text) {
			el.status.dataset.kind = kind;
			el.status.textContent = text;
		}
	}

	function showNote(text) {
		el.note.textContent = text;
		el.note.hidden = false;
	}

	function hideNote() {
		if (!el.note.hidden) {
			el.note.hidden = true;
			el.note.textContent = '';
		}
	}

	/* ---- the socket ---- */

	function wsUrl() {
		return (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/ws/chat';
	}

	function sendFrame(obj) {
		if (!ws || !connected) return false;
		try {
			ws.send(JSON.stringify(obj));
			return true;
		} catch (e) {
			return false;
		}
	}

	/* The server answered: what was sent before has arrived. */
	function delivered(list) {
		list.forEach(function (entry) {
			delete entry.q;
			delete entry.w;
		});
	}

	function answered() {
		if (!inflight.length) return;
		delivered(inflight);
		inflight = [];
		save();
	}

	function flush() {
		var changed = false;
		while (outbox.length && connected) {
			var entry = outbox[0];
			if (!sendFrame(entry.q)) break;
			outbox.shift();
			entry.w = Date.now();
			inflight.push(entry);
			var li = nodes.get(entry);
			if (li) markPending(li, false);
			changed = true;
		}
		if (changed) save();
	}

	/* The socket dropped: messages written to it in the last RESEND_WINDOW with
	 * no answer since go out again, first, on the next connection. */
	function requeueInflight() {
		var now = Date.now();
		var again = inflight.filter(function (e) { return now - e.w < RESEND_WINDOW; });
		delivered(inflight.filter(function (e) { return now - e.w >= RESEND_WINDOW; }));
		again.forEach(function (e) {
			delete e.w;
			var li = nodes.get(e);
			if (li) markPending(li, true);
		});
		inflight = [];
		outbox = again.concat(outbox);
		save();
	}

	function scheduleReconnect() {
		if (timer) return;
		var delay = Math.min(BACKOFF_MAX, BACKOFF_FIRST * Math.pow(2, attempt));
		attempt++;
		renderStatus();
		timer = setTimeout(function () {
			timer = null;
			connect();
		}, delay);
	}

	function reconnectNow() {
		if (ws || !timer) return;
		clearTimeout(timer);
		timer = null;
		connect();
	}

	function connect() {
		var sock;
		try {
			sock = new WebSocket(wsUrl(), 'loket-chat');
		} catch (e) {
			scheduleReconnect();
			return;
		}
		ws = sock;
		sock.onopen = function () {
			if (ws !== sock) return;
			connected = true;
			helloSession = session;
			if (session) sendFrame({ type: 'hello', session: session, since: maxSeq });
			flush();
			renderStatus();
		};
		sock.onmessage = function (ev) {
			if (ws !== sock || typeof ev.data !== 'string') return;
			onFrame(ev.data);
		};
		sock.onclose = function () {
			if (ws !== sock) return;
			ws = null;
			connected = false;
			requeueInflight();
			scheduleReconnect();
		};
	}

	/* ---- frames from the server ---- */

	function cleanButtons(list) {
		var out = [];
		if (!Array.isArray(list)) return out;
		for (var i = 0; i < list.length && out.length < MAX_BUTTONS; i++) {
			var b = list[i];
			if (!b || typeof b.id !== 'string' || !b.id) continue;
			var title = typeof b.title === 'string' && b.title ? b.title : b.id;
			out.push({ id: b.id, title: title });
		}
		return out;
	}

	function onSession(msg) {
		if (typeof msg.id !== 'string' || !msg.id) return;
		if (helloSession && msg.id !== helloSession) {
			/* the server no longer knows our conversation: start counting anew */
			seen.clear();
			maxSeq = 0;
			convState = 'bot';
			store.set('state', convState);
			note(T.newSession);
		}
		helloSession = msg.id;
		session = msg.id;
		store.set('session', session);
		if (typeof msg.office === 'string' && msg.office.trim()) {
			store.set('office', msg.office.trim());
			setOffice(msg.office.trim());
		}
		attempt = 0; /* a working connection: the next drop starts at 1 s again */
	}

	function onMessage(msg) {
		var text = typeof msg.text === 'string' ? msg.text : '';
		var seq = typeof msg.seq === 'number' && msg.seq > 0 && Math.floor(msg.seq) === msg.seq ? msg.seq : 0;
		if (seq && seen.has(seq) && seen.get(seq) === text) return; /* already shown */
		var entry = { k: msg.from === 'agent' ? 'agent' : 'bot', t: text };
		if (seq) entry.s = seq;
		var buttons = cleanButtons(msg.buttons);
		if (buttons.length) entry.b = buttons;
		if (msg.form && typeof msg.form === 'object') {
			var href = safeHref(msg.form.url);
			if (href && text.indexOf(msg.form.url) < 0) {
				entry.f = { url: href, title: typeof msg.form.title === 'string' ? msg.form.title : '' };
			}
		}
		if (!text && !entry.f && !buttons.length) return;
		add(entry);
	}

	function onState(msg) {
		var s = msg.state;
		if (s !== 'queued' && s !== 'assigned' && s !== 'bot') return;
		var prev = convState;
		convState = s;
		queuePos = typeof msg.position === 'number' && msg.position > 0 ? Math.floor(msg.position) : 0;
		store.set('state', s);
		if (s !== prev) {
			if (s === 'queued' && prev === 'bot') note(T.queuedNote);
			else if (s === 'assigned') note(T.assigned);
			else if (s === 'bot') note(T.backToBot);
		}
		renderStatus();
	}

	/* The server's error messages are for developers (English); the citizen
	 * reads ours, by code. */
	function onError(msg) {
		var code = typeof msg.code === 'string' ? msg.code : '';
		var hadMessage = inflight.length > 0;
		if (code === 'busy' || code === 'unavailable') {
			/* not taken: the same frames (same ids) go again in a few seconds */
			requeueInflight();
			if (!retryTimer) {
				retryTimer = setTimeout(function () {
					retryTimer = null;
					flush();
					renderStatus();
				}, RETRY_MS);
			}
		} else {
			answered();
		}
		/* a bad hello (a damaged session id) is answered with a new session:
		 * that note is enough */
		if (code === 'bad_request' && !hadMessage) return;
		note(T.errors[code] || T.error, false);
	}

	function onFrame(data) {
		var msg;
		try {
			msg = JSON.parse(data);
		} catch (e) {
			return;
		}
		if (!msg || typeof msg !== 'object') return;
		switch (msg.type) {
		case 'session': onSession(msg); break;
		case 'message':
			answered();
			onMessage(msg);
			break;
		case 'state':
			answered();
			onState(msg);
			break;
		case 'error': onError(msg); break;
		default: break;
		}
	}

	/* ---- what the citizen does ---- */

	function clientId() {
		var b = new Uint8Array(9);
		if (window.crypto && window.crypto.getRandomValues) {
			window.crypto.getRandomValues(b);
		} else {
			for (var i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
		}
		return 'c-' + Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
	}

	function queue(entry, frame) {
		frame.id = clientId();
		entry.q = frame;
		outbox.push(entry);
		add(entry);
		flush();
		renderStatus();
	}

	function sendText() {
		var text = el.input.value.replace(/^\s+|\s+$/g, '');
		if (!text) {
			el.input.value = '';
			autosize();
			return;
		}
		var bytes = utf8Bytes(text);
		if (bytes > MAX_BYTES) {
			showNote(T.tooLong(bytes, MAX_BYTES));
			return;
		}
		hideNote();
		el.input.value = '';
		autosize();
		queue({ k: 'me', t: text }, { type: 'message', text: text });
	}

	function sendButton(b) {
		queue({ k: 'me', t: b.title }, { type: 'message', button: b.id });
		/* the tapped chip is gone: keep keyboard users in the composer, but do
		 * not pop up a phone's keyboard */
		if (!finePointer || finePointer.matches) el.input.focus({ preventScroll: true });
	}

	function autosize() {
		el.input.style.height = 'auto';
		el.input.style.height = Math.min(el.input.scrollHeight, INPUT_MAX_PX) + 'px';
	}

	function restart() {
		if (!window.confirm(T.restartAsk)) return;
		var old = ws;
		ws = null;
		connected = false;
		if (old) old.close();
		if (timer) clearTimeout(timer);
		timer = null;
		attempt = 0;
		['session', 'log', 'state', 'office'].forEach(store.del);
		session = '';
		helloSession = '';
		convState = 'bot';
		entries = [];
		outbox = [];
		inflight = [];
		nodes.clear();
		seen.clear();
		maxSeq = 0;
		clearChips();
		while (el.log.firstChild) el.log.removeChild(el.log.firstChild);
		setOffice(T.office);
		renderStatus();
		connect();
	}

	/* ---- start ---- */

	function loadLog() {
		var raw = store.get('log');
		if (!raw) return;
		var list;
		try {
			list = JSON.parse(raw);
		} catch (e) {
			return;
		}
		if (!Array.isArray(list)) return;
		list.forEach(function (e) {
			if (!e || typeof e.t !== 'string' || !T.who[e.k]) return;
			var entry = { k: e.k, t: e.t };
			if (typeof e.s === 'number' && e.s > 0) entry.s = e.s;
			var b = cleanButtons(e.b);
			if (b.length) entry.b = b;
			if (e.f && safeHref(e.f.url)) entry.f = { url: safeHref(e.f.url), title: String(e.f.title || '') };
			var stale = typeof e.w === 'number' && Date.now() - e.w >= RESEND_WINDOW;
			if (e.k === 'me' && e.q && typeof e.q === 'object' && e.q.type === 'message' && !stale) {
				entry.q = e.q;
				if (typeof e.w === 'number') entry.w = e.w; /* sent, unanswered: again, quietly */
				outbox.push(entry);
			}
			entries.push(entry);
			remember(entry);
			render(entry);
		});
		var last = entries[entries.length - 1];
		if (last && (last.k === 'bot' || last.k === 'agent')) renderChips(nodes.get(last), last.b);
	}

	el.form.addEventListener('submit', function (ev) {
		ev.preventDefault();
		sendText();
	});
	el.input.addEventListener('keydown', function (ev) {
		if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
			ev.preventDefault();
			sendText();
		}
	});
	el.input.addEventListener('input', function () {
		autosize();
		if (!el.note.hidden && utf8Bytes(el.input.value.replace(/^\s+|\s+$/g, '')) <= MAX_BYTES) hideNote();
	});
	el.restart.addEventListener('click', restart);
	window.addEventListener('online', reconnectNow);
	document.addEventListener('visibilitychange', function () {
		if (document.visibilityState === 'visible') reconnectNow();
	});

	setOffice(store.get('office') || T.office);
	loadLog();
	renderStatus();
	scrollDown();
	connect();
})();

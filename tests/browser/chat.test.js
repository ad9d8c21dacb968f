// Browser test of the citizen's web chat page against a running `loket serve`
// (started by run.sh; LOKET_URL is its base URL). One scripted conversation in
// Debian's chromium at a phone-sized viewport: each step prints "ok" or "FAIL"
// with the reason, the last line is "N passed, M failed", the exit code is 1
// when any step failed. Steps build on each other, so a failure early on can
// make later steps fail too: read the first FAIL.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { chromium } = require('playwright-core');

const BASE = process.env.LOKET_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOT = process.env.LOKET_SCREENSHOT || '/tmp/loket-chat.png';
const SUMMARY = process.env.LOKET_SUMMARY || '';
const ARGS = [
	'--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
	'--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WAIT = 10000; // ms for a bot reply or a state change

if (!BASE) {
	console.error('chat.test.js: set LOKET_URL (run.sh does)');
	process.exit(2);
}

let passed = 0;
let failed = 0;

async function step(name, fn) {
	try {
		await fn();
		passed++;
		console.log(`ok   ${name}`);
	} catch (e) {
		failed++;
		const why = (e && e.message ? e.message : String(e)).split('\n').slice(0, 6).join('\n     ');
		console.log(`FAIL ${name}\n     ${why}`);
	}
}

// Runs in the page before chat.js: records every socket the page opens and
// every frame it sends, and can point new sockets at a closed port to keep
// the page disconnected for as long as a step needs.
function instrument() {
	const Native = window.WebSocket;
	const spy = { sockets: [], sent: [], block: false };
	window.__ws = spy;
	class SpySocket extends Native {
		constructor(url, protocols) {
			super(spy.block ? 'ws://127.0.0.1:9/blocked' : url, protocols);
			spy.sockets.push(this);
		}
		send(data) {
			spy.sent.push(String(data));
			return super.send(data);
		}
	}
	window.WebSocket = SpySocket;
}

// The conversation as the page shows it: [{kind, text, seq}] from #log.
function transcript(page) {
	return page.$$eval('#log > li', (lis) => lis.map((li) => ({
		kind: (li.className.match(/msg--(\w+)/) || [])[1] || '?',
		text: (li.querySelector('.bubble') || li).textContent,
		seq: li.dataset.seq || '',
	})));
}

function count(page, kind) {
	return page.locator(`#log > li.msg--${kind}`).count();
}

async function waitCount(page, kind, n) {
	await page.waitForFunction(([k, want]) => document.querySelectorAll(`#log > li.msg--${k}`).length >= want,
		[kind, n], { timeout: WAIT });
}

async function lastText(page, kind) {
	return page.locator(`#log > li.msg--${kind}`).last().locator('.bubble').textContent();
}

async function sentFrames(page) {
	const raw = await page.evaluate(() => window.__ws.sent);
	return raw.map((s) => JSON.parse(s));
}

async function waitStatus(page, re) {
	await page.waitForFunction((src) => new RegExp(src).test(document.getElementById('status').textContent),
		re.source, { timeout: WAIT + 25000 });
}

// Sends text by typing and pressing Enter; returns once the bot answered.
async function say(page, text) {
	const before = await count(page, 'bot');
	await page.fill('#input', text);
	await page.press('#input', 'Enter');
	await waitCount(page, 'bot', before + 1);
	return lastText(page, 'bot');
}

async function main() {
	const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
	const context = await browser.newContext({
		viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
		locale: 'id-ID',
	});
	await context.addInitScript(instrument);
	const page = await context.newPage();
	const pageErrors = [];
	const foreign = [];
	page.on('pageerror', (e) => pageErrors.push(e.message));
	page.on('console', (m) => {
		if (/Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
	});
	page.on('request', (r) => {
		const u = r.url();
		if (!u.startsWith(BASE + '/') && !u.startsWith('data:')) foreign.push(u);
	});
	const wsBase = BASE.replace(/^http/, 'ws');

	try {
		await step('page loads with Indonesian labels and connects over loket-chat', async () => {
			const res = await page.goto(`${BASE}/chat/`);
			assert.equal(res.status(), 200, 'GET /chat/');
			assert.equal(await page.getAttribute('html', 'lang'), 'id');
			assert.equal(await page.getAttribute('#input', 'placeholder'), 'Ketik pesan…');
			assert.equal((await page.textContent('#send')).trim(), 'Kirim');
			assert.equal(await page.locator('label[for="input"]').count(), 1, 'the input has a label');
			assert.equal(await page.getAttribute('#log', 'role'), 'log');
			await waitStatus(page, /^Terhubung$/);
			await page.waitForFunction(
				() => document.querySelector('#office').textContent.trim() === 'DPMPPTSP Kabupaten Tabanan',
				null, { timeout: 5000 });
			const sock = await page.evaluate(() => {
				const s = window.__ws.sockets[0];
				return { url: s.url, protocol: s.protocol };
			});
			assert.equal(sock.url, `${wsBase}/ws/chat`);
			assert.equal(sock.protocol, 'loket-chat', 'server accepted the subprotocol');
		});

		await step('"halo": the citizen bubble shows at once, right-aligned; a bot reply with quick replies follows', async () => {
			const reply = await say(page, 'halo');
			assert.equal(await lastText(page, 'me'), 'halo');
			const me = await page.locator('#log > li.msg--me .bubble').last().boundingBox();
			const bot = await page.locator('#log > li.msg--bot .bubble').last().boundingBox();
			assert.ok(me.x + me.width > 390 - 40, `citizen bubble at the right (right edge ${me.x + me.width})`);
			assert.ok(bot.x < 40, `bot bubble at the left (x ${bot.x})`);
			assert.ok(reply.trim().length > 0, 'bot reply has text');
			const chips = await page.locator('#log > li:last-child .chip').count();
			assert.ok(chips >= 1, `quick-reply buttons under the last bot message (found ${chips})`);
			const session = await page.evaluate(() => localStorage.getItem('loket.chat.session'));
			assert.ok(session, 'session id kept in localStorage');
			const frames = await sentFrames(page);
			const last = frames[frames.length - 1];
			assert.match(String(last.id), /^c-[0-9a-f]+$/, 'a client id for the server to deduplicate');
			assert.deepEqual(last, { type: 'message', text: 'halo', id: last.id });
		});

		await step('Shift+Enter makes a new line; Enter on an empty or blank message sends nothing', async () => {
			const before = (await transcript(page)).length;
			const sent = (await sentFrames(page)).length;
			await page.fill('#input', '');
			await page.press('#input', 'Enter');
			await page.fill('#input', '   \n  ');
			await page.press('#input', 'Enter');
			await page.click('#send');
			await page.fill('#input', 'baris satu');
			await page.press('#input', 'Shift+Enter');
			await page.type('#input', 'baris dua');
			assert.equal(await page.inputValue('#input'), 'baris satu\nbaris dua');
			await page.waitForTimeout(300);
			assert.equal((await transcript(page)).length, before, 'no bubble for an empty message');
			assert.equal((await sentFrames(page)).length, sent, 'no frame for an empty message');
			await page.fill('#input', '');
		});

		await step('"kantor masih buka?": the reply says face-to-face service is closed', async () => {
			const reply = await say(page, 'kantor masih buka?');
			assert.match(reply, /tatap muka/i, reply);
			assert.match(reply, /tutup/i, reply);
			assert.ok(!/\*tatap muka\*/.test(reply), 'WhatsApp *bold* is shown as bold, not asterisks');
			assert.ok(await page.locator('#log > li.msg--bot').last().locator('strong').count() >= 1, 'bold text');
			const lines = await page.locator('#log > li.msg--bot .bubble').last()
				.evaluate((b) => ({ ws: getComputedStyle(b).whiteSpace, h: b.getBoundingClientRect().height }));
			assert.equal(lines.ws, 'pre-wrap', 'line breaks kept');
		});

		await step('tapping a quick reply shows its title as the citizen bubble and a bot reply follows', async () => {
			const chip = page.locator('#log > li:last-child .chip').first();
			const title = (await chip.textContent()).trim();
			const bots = await count(page, 'bot');
			await chip.click();
			assert.equal(await lastText(page, 'me'), title);
			const frames = await sentFrames(page);
			const last = frames[frames.length - 1];
			assert.equal(last.type, 'message');
			assert.equal(typeof last.button, 'string', 'the frame names the button id');
			assert.equal(last.text, undefined, 'a button frame carries no text');
			await waitCount(page, 'bot', bots + 1);
			assert.equal(await page.locator('#log > li.msg--me .chips').count(), 0, 'chips never hang under the citizen');
		});

		await step('XSS: markup a citizen types is shown as literal text and never runs', async () => {
			const evil = '<img src=x onerror=window.__xss=1>';
			await say(page, evil);
			assert.equal(await lastText(page, 'me'), evil);
			assert.equal(await page.locator('#log img').count(), 0, 'no <img> in the conversation');
			await page.waitForTimeout(300);
			assert.equal(await page.evaluate(() => typeof window.__xss), 'undefined');
		});

		await step('a message over 4,096 bytes is refused with a visible note and kept in the input', async () => {
			const long = 'é'.repeat(2100); // 2,100 characters but 4,200 bytes
			const before = (await transcript(page)).length;
			const sent = (await sentFrames(page)).length;
			await page.fill('#input', long);
			await page.press('#input', 'Enter');
			await page.waitForSelector('#note:not([hidden])', { timeout: 2000 });
			assert.match(await page.textContent('#note'), /4\.096/);
			assert.equal((await transcript(page)).length, before, 'no bubble');
			assert.equal((await sentFrames(page)).length, sent, 'nothing sent');
			assert.equal(await page.inputValue('#input'), long, 'the text stays for editing');
			await page.fill('#input', 'é'.repeat(2048)); // exactly 4,096 bytes: allowed
			assert.ok(await page.isHidden('#note'), 'the note goes once the text fits');
			await page.fill('#input', '');
		});

		await step('addresses become links for http(s) only', async () => {
			await say(page, 'cek https://example.org/izin?a=1, lalu javascript:alert(1) dan ftp://x.y');
			const li = page.locator('#log > li.msg--me').last();
			const hrefs = await li.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
			assert.deepEqual(hrefs, ['https://example.org/izin?a=1']);
			assert.equal(await li.locator('a').getAttribute('rel'), 'noopener noreferrer nofollow');
		});

		await step('an off-topic message gets the fallback menu', async () => {
			const reply = await say(page, 'siapa juara piala dunia tahun 1998');
			assert.match(reply, /maaf|mengerti/i, reply);
			const chips = await page.locator('#log > li:last-child .chip').count();
			assert.ok(chips >= 3, `a menu of topics (found ${chips} buttons)`);
		});

		await step('server contract the page relies on: a message id sent twice is answered once', async () => {
			const bots = await count(page, 'bot');
			await page.evaluate(() => {
				const s = window.__ws.sockets[window.__ws.sockets.length - 1];
				const f = JSON.stringify({ type: 'message', text: 'terima kasih', id: 'c-test-twice' });
				s.send(f);
				s.send(f);
			});
			await waitCount(page, 'bot', bots + 1);
			await page.waitForTimeout(1500);
			assert.equal(await count(page, 'bot'), bots + 1, 'one answer');
		});

		await step('a dropped connection shows "Menghubungkan ulang…", queues what is typed, and resumes', async () => {
			const session = await page.evaluate(() => localStorage.getItem('loket.chat.session'));
			const maxSeq = Math.max(0, ...(await transcript(page)).map((e) => Number(e.seq) || 0));
			const bots = await count(page, 'bot');
			await page.evaluate(() => {
				window.__ws.block = true;
				window.__ws.sockets[window.__ws.sockets.length - 1].close();
			});
			await waitStatus(page, /^Menghubungkan ulang…/);
			await page.fill('#input', 'kenapa kantor tutup?');
			await page.press('#input', 'Enter');
			const pending = page.locator('#log > li.msg--me').last();
			assert.equal(await pending.locator('.bubble').textContent(), 'kenapa kantor tutup?');
			assert.equal(await pending.locator('.msg__meta').textContent(), 'Menunggu koneksi…');
			await page.waitForTimeout(1500); // at least one failed attempt while blocked
			const sentBefore = (await sentFrames(page)).length;
			await page.evaluate(() => { window.__ws.block = false; });
			await waitStatus(page, /^Terhubung$/);
			const frames = (await sentFrames(page)).slice(sentBefore);
			assert.deepEqual(frames[0], { type: 'hello', session, since: maxSeq }, 'hello first, with session and since');
			assert.deepEqual(frames[1], { type: 'message', text: 'kenapa kantor tutup?', id: frames[1].id },
				'then the queued message, and nothing already answered');
			await waitCount(page, 'bot', bots + 1);
			assert.equal(await pending.locator('.msg__meta').count(), 0, 'pending mark gone once sent');
			const seqs = (await transcript(page)).map((e) => e.seq).filter(Boolean);
			assert.equal(new Set(seqs).size, seqs.length, `no message shown twice (seqs ${seqs.join(',')})`);
		});

		await step('a message sent just before the connection drops goes again with its id and is answered once', async () => {
			const text = 'jam layanan kantor?';
			const bots = await count(page, 'bot');
			const sentBefore = (await sentFrames(page)).length;
			await page.evaluate((t) => {
				document.getElementById('input').value = t;
				document.getElementById('send').click();
				window.__ws.sockets[window.__ws.sockets.length - 1].close();
			}, text);
			await waitStatus(page, /^Terhubung$/);
			await waitCount(page, 'bot', bots + 1);
			await page.waitForTimeout(1500);
			const frames = (await sentFrames(page)).slice(sentBefore).filter((f) => f.type === 'message');
			assert.equal(frames.length, 2, 'sent, then sent again after the reconnect');
			assert.equal(frames[0].id, frames[1].id, 'with the same id');
			assert.equal(await count(page, 'bot'), bots + 1, 'one answer');
			const mine = (await transcript(page)).filter((e) => e.kind === 'me' && e.text === text);
			assert.equal(mine.length, 1, 'one citizen bubble');
		});

		await step('reload: the earlier conversation is shown again, resumed via session + since, no duplicates', async () => {
			const before = await transcript(page);
			const session = await page.evaluate(() => localStorage.getItem('loket.chat.session'));
			const maxSeq = Math.max(0, ...before.map((e) => Number(e.seq) || 0));
			await page.reload();
			await waitStatus(page, /^Terhubung$/);
			await page.waitForTimeout(1000); // anything the server replays arrives now
			const after = await transcript(page);
			assert.deepEqual(after.map((e) => `${e.kind}:${e.text}`), before.map((e) => `${e.kind}:${e.text}`));
			const frames = await sentFrames(page);
			assert.deepEqual(frames[0], { type: 'hello', session, since: maxSeq });
			assert.equal(await page.evaluate(() => localStorage.getItem('loket.chat.session')), session, 'same session');
			const reply = await say(page, 'sampai kapan tutupnya?');
			assert.ok(reply.trim().length > 0, 'the resumed conversation answers');
		});

		await step('a message typed while offline survives a reload and is sent once after it', async () => {
			const text = 'formulir izin di mana?';
			await page.evaluate(() => {
				window.__ws.block = true;
				window.__ws.sockets[window.__ws.sockets.length - 1].close();
			});
			await waitStatus(page, /^Menghubungkan ulang…/);
			await page.fill('#input', text);
			await page.press('#input', 'Enter');
			assert.equal(await page.locator('#log > li.msg--pending').count(), 1);
			const bots = await count(page, 'bot');
			await page.reload(); // the new document's sockets are not blocked
			await waitStatus(page, /^Terhubung$/);
			await waitCount(page, 'bot', bots + 1);
			const mine = (await transcript(page)).filter((e) => e.kind === 'me' && e.text === text);
			assert.equal(mine.length, 1, 'shown once');
			assert.equal(await page.locator('#log > li.msg--pending').count(), 0, 'no longer pending');
			const frames = (await sentFrames(page)).filter((f) => f.type === 'message' && f.text === text);
			assert.equal(frames.length, 1, 'sent once');
		});

		await step('screenshot at 390x844 (quick replies under the last answer)', async () => {
			await page.evaluate(() => { document.getElementById('scroller').scrollTop = 1e9; });
			await page.screenshot({ path: SHOT });
			assert.ok(fs.statSync(SHOT).size > 1000);
		});

		await step('asking for a person shows "Menunggu petugas…" in the status line', async () => {
			await page.fill('#input', 'saya mau bicara dengan petugas');
			await page.press('#input', 'Enter');
			await waitStatus(page, /^Menunggu petugas…/);
		});

		// The console side (an agent claiming and answering) is not driven here:
		// these frames are handed to the page's socket handler directly, to check
		// how the page shows them.
		await step('agent frames (handed to the page directly): joined note, "Petugas" bubble, form link, back to bot', async () => {
			const push = (frames) => page.evaluate((list) => {
				const s = window.__ws.sockets[window.__ws.sockets.length - 1];
				for (const f of list) s.onmessage(new MessageEvent('message', { data: JSON.stringify(f) }));
			}, frames);
			await push([{ type: 'state', state: 'assigned', position: 0 }]);
			await waitStatus(page, /^Petugas telah bergabung$/);
			assert.equal(await lastText(page, 'note'), 'Petugas telah bergabung');
			await push([{ type: 'message', from: 'agent', text: 'Halo, saya <b>Made</b>.\nLihat javascript:alert(1) atau https://example.org/a.', buttons: [], seq: 1e9 }]);
			const agent = page.locator('#log > li.msg--agent').last();
			assert.equal(await agent.locator('.msg__who').textContent(), 'Petugas');
			assert.match(await agent.locator('.bubble').textContent(), /^Halo, saya <b>Made<\/b>\.\n/);
			assert.deepEqual(await agent.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
				['https://example.org/a']);
			await push([{ type: 'message', from: 'agent', text: 'Halo, saya <b>Made</b>.\nLihat javascript:alert(1) atau https://example.org/a.', buttons: [], seq: 1e9 }]);
			assert.equal(await count(page, 'agent'), 1, 'the same seq again is not shown twice');
			await push([{ type: 'message', from: 'bot', text: 'Ini formulirnya.', buttons: [], seq: 1e9 + 1,
				form: { id: 'x', title: 'Formulir X', url: 'https://example.org/x.pdf' } },
			{ type: 'message', from: 'bot', text: 'Yang ini tidak.', buttons: [], seq: 1e9 + 2,
				form: { id: 'y', title: 'Formulir Y', url: 'javascript:alert(1)' } }]);
			const forms = page.locator('#log .bubble__form a');
			assert.equal(await forms.count(), 1, 'a form link only for an http(s) address');
			assert.equal(await forms.getAttribute('href'), 'https://example.org/x.pdf');
			await push([{ type: 'state', state: 'bot', position: 0 }]);
			await waitStatus(page, /^Terhubung$/);
			assert.match(await lastText(page, 'note'), /kembali dilayani asisten/);
		});

		await step('no script errors, no CSP violations, no request outside the server', async () => {
			assert.deepEqual(pageErrors, []);
			assert.deepEqual(foreign, []);
		});
	} finally {
		await browser.close();
	}
}

main().catch((e) => {
	failed++;
	console.log(`FAIL the test itself: ${e && e.stack ? e.stack : e}`);
}).finally(() => {
	const line = `${passed} passed, ${failed} failed`;
	if (SUMMARY) {
		try { fs.writeFileSync(SUMMARY, line + '\n'); } catch (e) { /* the printed line still counts */ }
	}
	console.log(line);
	process.exitCode = failed ? 1 : 0;
});

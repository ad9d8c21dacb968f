/* Tests for bot_match: the prefilter never changes the answer (first and each,
 * against every regex in turn), literal extraction gives up where it must,
 * compile errors carry PCRE2's message and offset, the match limit turns a
 * catastrophic pattern into "no match", and bot_match_each keeps order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bot/bot_match.h"

/* ---- the corpus: realistic FAQ patterns (id = 100 + index) ---- */

static const char *const corpus[] = {
    "\\b(tutup|ditutup|buka|dibuka)\\b",			     /* 100 */
    "\\btatap\\s*muka\\b",					     /* 101 */
    "\\b(form(ulir)?|blanko)\\b",				     /* 102 */
    "\\bijin|izin\\b",						     /* 103 */
    "\\bkpn\\b",						     /* 104 */
    "verifikasi\\s+lapangan",					     /* 105 */
    "\\b(hi|halo|hallo|hai)\\b",				     /* 106 */
    "om\\s*swastyastu",						     /* 107 */
    "\\bgmn?a?\\b",						     /* 108 */
    "\\bjam\\s*(buka|layanan|kerja|operasional)\\b",		     /* 109 */
    "\\bbuka\\s*jam\\s*berapa\\b",				     /* 110 */
    "\\b(opening|office|service)\\s*hours?\\b",			     /* 111 */
    "\\bwhat\\s*time\\b",					     /* 112 */
    "\\b(pbg|imb)\\b",						     /* 113 */
    "\\bpersetujuan\\s+bangunan(\\s+gedung)?\\b",		     /* 114 */
    "\\bsiup\\b|\\bsurat\\s+izin\\s+usaha\\b",			     /* 115 */
    "\\bnib\\b",						     /* 116 */
    "\\boss\\b|\\bonline\\s+single\\s+submission\\b",		     /* 117 */
    "\\b(terima\\s*kasih|makasih|thx|thanks?)\\b",		     /* 118 */
    "\\b(syarat|persyaratan)\\b",				     /* 119 */
    "\\bbiaya|tarif|retribusi\\b",				     /* 120 */
    "\\b(berapa|brp)\\s+(lama|hari)\\b",			     /* 121 */
    "\\bstatus\\s+(permohonan|berkas|izin)\\b",			     /* 122 */
    "\\bcek\\s*status\\b",					     /* 123 */
    "\\b(alamat|lokasi|dimana|di\\s*mana)\\b",			     /* 124 */
    "\\b(telp|telepon|no\\.?\\s*hp|nomor)\\b",			     /* 125 */
    "\\bemail\\b|\\be-mail\\b",					     /* 126 */
    "\\b(petugas|operator|admin|cs)\\b",			     /* 127 */
    "\\b(stop|berhenti|unsubscribe)\\b",			     /* 128 */
    "^(mulai|start)$",						     /* 129 */
    "\\bsertifikat\\s+laik\\s+fungsi|\\bslf\\b",		     /* 130 */
    "\\b(amdal|ukl[\\s-]*upl|sppl)\\b",				     /* 131 */
    "\\bpkkpr\\b",						     /* 132 */
    "\\btanda\\s+daftar\\s+(gudang|usaha\\s+pariwisata)\\b",	     /* 133 */
    "\\b[0-9]{16}\\b",						     /* 134: no literal */
    "\\b(nik|ktp)\\b",						     /* 135 */
    "(?i)izin\\s+reklame",					     /* 136: inline option */
    "\\Qa.b\\E",						     /* 137: \Q..\E */
    "\\bpendaftaran(?=\\s+online)",				     /* 138 */
    "(?<!per)izin\\b",						     /* 139 */
    "\\b(?:apotek|apotik|toko\\s+obat)\\b",			     /* 140 */
    "\\bsip(?:a|b)?\\b",					     /* 141 */
    "\\b(dokter|bidan|perawat)\\s+praktik\\b",			     /* 142 */
    "[a-z]+@[a-z]+\\.(com|id)\\b",				     /* 143 */
    "\\bjadwal\\b.*\\bsurvei\\b",				     /* 144 */
    "\\bsurvei|survey\\b",					     /* 145 */
    "\\bkeluhan|komplain|pengaduan\\b",				     /* 146 */
    "\\blapor(an)?\\b",						     /* 147 */
    "\\bmenara\\s+telekomunikasi\\b",				     /* 148 */
    "\\bbahasa\\s+inggris\\b|\\benglish\\b",			     /* 149 */
    "\\bbahasa\\s+indonesia\\b",				     /* 150 */
    "\\bwaktu\\s+(proses|penyelesaian)\\b",			     /* 151 */
    "\\bkk\\b",							     /* 152 */
    "\\bok(e|ey|ay)?\\b",					     /* 153 */
    "sel(amat)?\\s+(pagi|siang|sore|malam)",			     /* 154 */
    "\\bp+e+r+m+i+s+i+\\b",					     /* 155 */
    "\\b(?<name>nomor)\\s+antrian\\b",				     /* 156 */
    "\\bpak\\b|\\bbu\\b|\\bibu\\b",				     /* 157 */
    "\\b(izin|ijin)\\s+(usaha|lokasi|gangguan|ho)\\b",		     /* 158 */
    "\\bhow\\s+(do|can)\\s+i\\s+apply\\b",			     /* 159 */
    "\\bcaf\xc3\xa9\\b",					     /* 160: non-ASCII */
    "\\bunduh|download\\b",					     /* 161 */
    "\\bk3\\b",							     /* 162 */
    "\\bsk\\b",							     /* 163 */
    "\\bwhatsapp|wa\\b",					     /* 164 */
    "\\b\\w+\\s*kelurahan\\b",					     /* 165 */
    "x{2,}yz",							     /* 166 */
    "[[:alpha:]]+ing\\b",					     /* 167 */
    "\\bmasalah(?:\\s+(?:teknis|sistem))?\\b",			     /* 168 */
    "\\bpengambilan\\s+(berkas|sk)\\b",				     /* 169 */
    "gratis|free|tanpa\\s+biaya",				     /* 170 */
    "^\\s*\\d+\\s*$",						     /* 171: no literal */
    "\\bterima\\s+kasih\\s*\xf0\x9f\x99\x8f",			     /* 172: emoji */
    "\\bkantor\\s+(camat|desa|lurah|bupati)\\b",		     /* 173 */
    "\\bskck\\b|\\bsurat\\s+keterangan\\s+catatan\\s+kepolisian\\b", /* 174 */
    "\\b(?>ahli|tenaga)\\s+waris\\b",				     /* 175 */
    "\\bantri(?:an)?\\b",					     /* 176 */
    "\\bwhere\\s+is\\s+(your|the)\\s+office\\b",		     /* 177 */
    "\\b(hello|hey|good\\s+(morning|afternoon|evening))\\b",	     /* 178 */
    "\\bpermit\\b|\\blicen[cs]e\\b",				     /* 179 */
    "(?:kepala|)\\s*dinas\\b",					     /* 180: empty alternative */
    "(?:sekretaris\\s+)?daerah\\b",				     /* 181: optional group */
    "\\b(?:nomor|no)?\\s*registrasi(?:\\s+ulang)*\\b",		     /* 182 */
};
#define NCORPUS (sizeof(corpus) / sizeof(corpus[0]))

/* ---- messages ---- */

static const char *const messages[] = {
    "",
    " ",
    "halo",
    "Halo kak",
    "HALO",
    "hallo min, mau tanya",
    "hai",
    "hi there",
    "Hiya",
    "om swastyastu",
    "Om Swastyastu, selamat pagi",
    "omswastyastu",
    "selamat pagi",
    "Selamat siang pak",
    "sel malam",
    "selamat malem",
    "jam buka kantor brp ya",
    "Jam layanan hari sabtu?",
    "jamkerja",
    "buka jam berapa",
    "kantornya tutup jam berapa?",
    "apakah hari ini ditutup",
    "Dibuka kapan ya",
    "what are your office hours",
    "Opening hours please",
    "service hour",
    "what time do you open",
    "whattime",
    "mau tanya tatap muka bisa?",
    "tatapmuka",
    "bisa TATAP MUKA",
    "minta formulir pbg",
    "form",
    "formulir",
    "formul",
    "blanko permohonan",
    "platform apa ini",
    "izin",
    "IZIN",
    "Izin usaha bagaimana",
    "perizinan",
    "perijinan online",
    "ijin lokasi",
    "izinnya",
    "ijin gangguan ho",
    "kpn",
    "KPN",
    "kpnya",
    "kpn selesai?",
    "verifikasi lapangan kapan",
    "Verifikasi   Lapangan",
    "verifikasilapangan",
    "gmn",
    "gmna",
    "gma",
    "gm",
    "Gimana caranya",
    "gmn cara daftar nib",
    "syarat pbg apa saja",
    "persyaratan imb",
    "IMB",
    "imbalan",
    "persetujuan bangunan gedung",
    "Persetujuan Bangunan",
    "siup",
    "surat izin usaha perdagangan",
    "nib saya hilang",
    "NIB",
    "nibble",
    "oss error",
    "OSS",
    "online single submission",
    "boss",
    "terima kasih",
    "terimakasih",
    "makasih ya",
    "thanks",
    "thank you",
    "THX",
    "biaya pbg berapa",
    "berapa tarif retribusi",
    "gratis kah",
    "tanpa biaya?",
    "free?",
    "berapa lama prosesnya",
    "brp hari",
    "status permohonan saya",
    "cek status",
    "cekstatus berkas",
    "Status izin 12345",
    "alamat kantor dimana",
    "di mana lokasinya",
    "dimana",
    "nomor telepon kantor",
    "no hp petugas",
    "no. hp",
    "no.hp",
    "telp",
    "email kantor",
    "e-mail",
    "emailnya apa",
    "mau bicara dengan petugas",
    "admin",
    "cs",
    "css",
    "operator tolong",
    "stop",
    "STOP",
    "berhenti",
    "unsubscribe",
    "mulai",
    "MULAI",
    "mulai lagi",
    "start",
    "slf",
    "sertifikat laik fungsi",
    "amdal",
    "ukl-upl",
    "UKL UPL",
    "uklupl",
    "sppl",
    "pkkpr",
    "tanda daftar gudang",
    "tanda daftar usaha pariwisata",
    "5102030405060708",
    "nik saya 5102030405060708",
    "510203040506070",
    "ktp hilang",
    "izin reklame",
    "IZIN REKLAME",
    "a.b",
    "A.B",
    "axb",
    "pendaftaran online",
    "pendaftaran offline",
    "apotek",
    "apotik",
    "toko obat",
    "sip",
    "sipa",
    "sipb",
    "sipc",
    "dokter praktik",
    "bidan praktik mandiri",
    "kirim ke budi@gmail.com",
    "info@dpmptsp.tabanankab.go.id",
    "jadwal survei",
    "jadwal kapan survei lapangan",
    "survey",
    "keluhan",
    "komplain",
    "mau pengaduan",
    "lapor",
    "laporan",
    "melaporkan",
    "menara telekomunikasi",
    "bahasa inggris",
    "english please",
    "English",
    "bahasa indonesia",
    "waktu proses",
    "waktu penyelesaian",
    "kk",
    "KK",
    "ok",
    "oke",
    "okey",
    "okay",
    "okee",
    "permisi",
    "ppeerrmmiissii",
    "PERMISI",
    "permisii",
    "nomor antrian",
    "pak",
    "bu",
    "ibu",
    "bapak ibu",
    "how do i apply",
    "How can I apply for a permit",
    "caf\xc3\xa9",
    "CAF\xc3\x89",
    "cafe",
    "unduh",
    "download formulir",
    "k3",
    "K3",
    "sk",
    "sk saya",
    "whatsapp",
    "wa",
    "WA",
    "kantor kelurahan",
    "xxyz",
    "xyz",
    "xxxxyz",
    "testing",
    "waiting",
    "masalah teknis",
    "masalah",
    "pengambilan sk",
    "pengambilan berkas",
    "12",
    " 3 ",
    "terima kasih \xf0\x9f\x99\x8f",
    "\xf0\x9f\x99\x8f\xf0\x9f\x99\x8f",
    "\xf0\x9f\x98\x80 halo",
    "kantor camat",
    "kantor bupati tabanan",
    "skck",
    "surat keterangan catatan kepolisian",
    "ahli waris",
    "tenaga waris",
    "antri",
    "antrian",
    "where is your office",
    "good morning",
    "hey",
    "hello",
    "license",
    "licence",
    "permit",
    "dinas",
    "kepala dinas",
    "Dinas PUPR",
    "daerah",
    "sekretaris daerah",
    "registrasi",
    "no registrasi ulang",
    /* Kelvin sign U+212A and long s U+017F: caseless matches of k and s */
    "\xe2\x84\xaapn",
    "\xe2\x84\xaa"
    "3",
    "\xc5\xbfiup",
    "\xc5\xbftop",
    "ca\xc5\xbf",
    "\xe2\x84\xaa\xe2\x84\xaa",
    "c\xc5\xbf",
    "o\xc5\xbf\xc5\xbf",
    /* other non-ASCII: dotted capital I does not fold to i */
    "\xc4\xb0zin",
    "\xc3\xa9t\xc3\xa9 izin",
    "perizinan \xe2\x80\x94 bagaimana",
    "  halo   kak  ",
    "halo\nkak",
    "izin!!!",
    "izin?",
    "(izin)",
    "izin_usaha",
    "izin123",
    "123izin",
};
#define NMESSAGES (sizeof(messages) / sizeof(messages[0]))

/* ---- helpers ---- */

static bot_match *build_set(const char *const *pats, size_t n, uint32_t base)
{
	bot_match *m = bot_match_new();
	assert_non_null(m);
	for (size_t i = 0; i < n; i++) {
		char err[256];
		size_t off = 0;
		if (bot_match_add(m, pats[i], strlen(pats[i]), base + (uint32_t)i, err, sizeof(err), &off) != 0)
			fail_msg("pattern %zu '%s' does not compile: %s at %zu", i, pats[i], err, off);
	}
	assert_int_equal(bot_match_build(m), 0);
	return m;
}

/* Deterministic generator so a failure can be reproduced. */
static uint32_t rng_state = 12345u;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static const char *const words[] = {
    "izin",
    "ijin",
    "perizinan",
    "buka",
    "tutup",
    "jam",
    "berapa",
    "brp",
    "pbg",
    "imb",
    "formulir",
    "form",
    "blanko",
    "kpn",
    "tatap",
    "muka",
    "verifikasi",
    "lapangan",
    "halo",
    "hai",
    "om",
    "swastyastu",
    "gmn",
    "gma",
    "gimana",
    "syarat",
    "status",
    "cek",
    "nomor",
    "antrian",
    "email",
    "e-mail",
    "no.",
    "hp",
    "stop",
    "mulai",
    "start",
    "slf",
    "ukl",
    "upl",
    "-",
    "sppl",
    "survei",
    "survey",
    "jadwal",
    "selamat",
    "pagi",
    "malam",
    "ok",
    "oke",
    "permisi",
    "sk",
    "k3",
    "kk",
    "wa",
    "whatsapp",
    "kantor",
    "camat",
    "desa",
    "kelurahan",
    "waris",
    "ahli",
    "apply",
    "how",
    "do",
    "i",
    "office",
    "hours",
    "time",
    "what",
    "thanks",
    "terima",
    "kasih",
    "makasih",
    "a.b",
    "xxyz",
    "testing",
    "bapak",
    "ibu",
    "bu",
    "pak",
    "reklame",
    "pendaftaran",
    "online",
    "sip",
    "sipa",
    "dokter",
    "praktik",
    "budi@gmail.com",
    "\xe2\x84\xaa",
    "\xc5\xbf",
    "\xf0\x9f\x99\x8f",
    "caf\xc3\xa9",
    "12",
    "5102030405060708",
    "yang",
    "dan",
    "untuk",
    "saya",
    "mau",
    "tanya",
    "ya",
    "kak",
    "dinas",
    "kepala",
    "daerah",
    "registrasi",
    "min",
    "tolong",
    "bisa",
    "tidak",
    "sudah",
    "belum",
    "kapan",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* Writes a random chat-like message into buf (mixed case, glued words,
 * punctuation); returns its length. */
static size_t random_message(char *buf, size_t cap)
{
	size_t len = 0;
	int nw = (int)(rng() % 9);
	for (int w = 0; w < nw; w++) {
		const char *word = words[rng() % NWORDS];
		size_t wl = strlen(word);
		uint32_t sep = rng() % 10;
		if (w > 0 && len + 1 < cap && sep != 0)
			buf[len++] = sep == 1 ? '?' : sep == 2 ? ',' : ' ';
		uint32_t casing = rng() % 4;
		for (size_t k = 0; k < wl && len + 1 < cap; k++) {
			char c = word[k];
			if ((casing == 1 || (casing == 2 && k == 0) || (casing == 3 && rng() % 2)) && c >= 'a' &&
			    c <= 'z')
				c = (char)(c - 'a' + 'A');
			buf[len++] = c;
		}
	}
	buf[len] = '\0';
	return len;
}

static void check_same(const bot_match *m, bot_match_scratch *s, const char *label, const char *t, size_t len)
{
	int64_t fast = bot_match_first(m, t, len, s);
	int64_t slow = bot_match_first_slow(m, t, len, s);
	if (fast != slow)
		fail_msg("%s: message '%.*s': prefiltered %lld, every regex %lld", label, (int)len, t, (long long)fast,
			 (long long)slow);
}

/* ---- tests ---- */

/* On the whole corpus, the prefilter gives the same first match as trying every
 * regex, for every message: hand-written, upper-cased, random, very long. */
static void test_bot_match_first_equals_slow(void **state)
{
	(void)state;
	bot_match *m = build_set(corpus, NCORPUS, 100);
	bot_match_scratch *s = bot_match_scratch_new();
	assert_non_null(s);
	char buf[2048];

	for (size_t i = 0; i < NMESSAGES; i++) {
		size_t len = strlen(messages[i]);
		check_same(m, s, "hand-written", messages[i], len);
		for (size_t k = 0; k <= len && len < sizeof(buf); k++) {
			char c = messages[i][k];
			buf[k] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
		}
		if (len < sizeof(buf))
			check_same(m, s, "upper-cased", buf, len);
	}
	for (int i = 0; i < 5000; i++) {
		size_t len = random_message(buf, sizeof(buf));
		check_same(m, s, "random", buf, len);
	}
	/* very long: 64 KiB of filler, with and without a match at the very end */
	size_t big = 64 * 1024;
	char *longtext = malloc(big + 16);
	assert_non_null(longtext);
	for (size_t k = 0; k < big; k++)
		longtext[k] = "abcdefghij klmnopqrstuvwxy "[k % 27];
	check_same(m, s, "long filler", longtext, big);
	memcpy(longtext + big, " izin", 5);
	check_same(m, s, "long then izin", longtext, big + 5);
	assert_int_equal(bot_match_first(m, longtext, big + 5, s), 103);
	free(longtext);

	bot_match_scratch_free(s);
	bot_match_free(m);
}

/* The prefilter keeps every matching pattern, not just the first: each pattern
 * alone, filtered and unfiltered, on every message. */
static void test_bot_match_each_pattern_sound(void **state)
{
	(void)state;
	bot_match_scratch *s = bot_match_scratch_new();
	assert_non_null(s);
	char buf[512];
	for (size_t p = 0; p < NCORPUS; p++) {
		bot_match *m = build_set(&corpus[p], 1, (uint32_t)p);
		char label[64];
		snprintf(label, sizeof(label), "pattern %zu alone", p);
		for (size_t i = 0; i < NMESSAGES; i++)
			check_same(m, s, label, messages[i], strlen(messages[i]));
		rng_state = 777u + (uint32_t)p;
		for (int i = 0; i < 500; i++) {
			size_t len = random_message(buf, sizeof(buf));
			check_same(m, s, label, buf, len);
		}
		bot_match_free(m);
	}
	bot_match_scratch_free(s);
}

/* What a citizen would get: the first pattern in order that matches. */
static void test_bot_match_first_expected(void **state)
{
	(void)state;
	static const struct {
		const char *msg;
		int64_t want;
	} cases[] = {
	    {"jam buka kantor brp ya", 100}, /* "buka" ranks before "jam buka" */
	    {"Jam layanan hari sabtu?", 109},
	    {"IZIN", 103},
	    {"mohon izin", 103},
	    {"perizinan", -1}, /* "izin\b" needs a boundary after it */
	    {"perijinan", -1}, /* "\bijin" needs one before */
	    {"Om Swastyastu", 107},
	    {"gmn", 108},
	    {"gimana", -1},
	    {"\xe2\x84\xaapn", 104}, /* KELVIN SIGN + "pn" is caselessly "kpn" */
	    {"\xc5\xbftop", 128},    /* LONG S + "top" is caselessly "stop" */
	    {"5102030405060708", 134},
	    {"izin reklame", 103},
	    {"xxxxyz", 166},
	    {"", -1},
	    {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80", -1},
	    {"mau tanya tatap   muka", 101},
	    {"caf\xc3\x89 dekat kantor", 160}, /* caseless Unicode: É matches é */
	    {"bahasa inggris", 149},
	    {"ENGLISH", 149},
	    {"ok", 153},
	};
	bot_match *m = build_set(corpus, NCORPUS, 100);
	bot_match_scratch *s = bot_match_scratch_new();
	assert_non_null(s);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = bot_match_first(m, cases[i].msg, strlen(cases[i].msg), s);
		if (got != cases[i].want)
			fail_msg("message '%s': got %lld, want %lld", cases[i].msg, (long long)got,
				 (long long)cases[i].want);
	}
	bot_match_scratch_free(s);
	bot_match_free(m);
}

/* Which patterns get a required literal: those the extraction cannot reason
 * about run on every message. */
static void test_bot_match_unfiltered(void **state)
{
	(void)state;
	static const struct {
		const char *pattern;
		size_t unfiltered;
	} cases[] = {
	    {"\\bkpn\\b", 0},
	    {"\\bgmn?a?\\b", 0},
	    {"\\b(tutup|ditutup|buka|dibuka)\\b", 0},
	    {"\\bijin|izin\\b", 0},
	    {"\\btatap\\s*muka\\b", 0},
	    {"(izin)+", 0},
	    {"izin(?=x)", 0},
	    {"(?<=per)izin", 0},
	    {"(?<n>izin)", 0},
	    {"(?>izin)", 0},
	    {"caf\xc3\xa9", 0},
	    {"\\.", 0},
	    {"a{3}", 0},
	    {"\\b[0-9]{16}\\b", 1},
	    {"(?i)izin", 1},
	    {"\\Qizin\\E", 1},
	    {"(izin|)", 1},
	    {"(izin)?", 1},
	    {"(izin)*", 1},
	    {"izin|\\d+", 1},
	    {"\\x{41}", 1},
	    {"\\p{L}+", 1},
	    {"(\\w)\\1", 1},
	    {"(a)?(?(1)b|c)", 1},
	    {"(*UCP)izin", 1},
	    {"(?#note)izin", 1},
	    {"[izin]", 1},
	    {"\xc3\xa9+", 1},
	    {".*", 1},
	    {"", 1},
	    {"^$", 1},
	    {"a{,3}", 1},
	    {"\\Eizin", 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bot_match *m = build_set(&cases[i].pattern, 1, 1);
		if (bot_match_unfiltered_count(m) != cases[i].unfiltered)
			fail_msg("pattern '%s': unfiltered %zu, want %zu", cases[i].pattern,
				 bot_match_unfiltered_count(m), cases[i].unfiltered);
		assert_int_equal(bot_match_count(m), 1);
		bot_match_free(m);
	}
	bot_match *all = build_set(corpus, NCORPUS, 100);
	/* 134 (class only), 136 ((?i)), 137 (\Q..\E), 171 (anchors and classes) */
	assert_int_equal(bot_match_unfiltered_count(all), 4);
	bot_match_free(all);
}

static void test_bot_match_compile_error(void **state)
{
	(void)state;
	static const struct {
		const char *pattern;
		size_t offset;
	} cases[] = {
	    {"(\\bizin", 7},
	    {"izin)", 4},
	    {"[abc", 4},
	    {"a**", 2},
	};
	bot_match *m = bot_match_new();
	assert_non_null(m);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[128];
		size_t off = 999;
		memset(err, 'x', sizeof(err));
		int rc = bot_match_add(m, cases[i].pattern, strlen(cases[i].pattern), 1, err, sizeof(err), &off);
		if (rc != -1 || err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL || off != cases[i].offset)
			fail_msg("pattern '%s': rc %d, err '%.*s', offset %zu (want %zu)", cases[i].pattern, rc,
				 (int)sizeof(err), err, off, cases[i].offset);
	}
	/* a tiny buffer still gets a NUL-terminated message */
	char small[8];
	size_t off = 0;
	assert_int_equal(bot_match_add(m, "(\\bizin", 7, 1, small, sizeof(small), &off), -1);
	assert_non_null(memchr(small, '\0', sizeof(small)));
	assert_int_equal(bot_match_count(m), 0);
	/* length, not NUL: only the first 4 bytes of "izin(" are the pattern */
	assert_int_equal(bot_match_add(m, "izin(", 4, 7, small, sizeof(small), &off), 0);
	assert_int_equal(bot_match_build(m), 0);
	/* nothing may be added once built */
	char err[128];
	assert_int_equal(bot_match_add(m, "izin", 4, 8, err, sizeof(err), &off), -1);
	assert_true(err[0] != '\0');
	bot_match_scratch *s = bot_match_scratch_new();
	assert_non_null(s);
	assert_int_equal(bot_match_first(m, "izin", 4, s), 7);
	bot_match_scratch_free(s);
	bot_match_free(m);
}

/* A catastrophic pattern stops at the match limit and counts as no match, fast. */
static void test_bot_match_limit(void **state)
{
	(void)state;
	static const char *const pats[] = {"(a+)+$", "^(\\w+\\s?)*$", "\\bizin\\b"};
	const char *text = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";
	bot_match *m = build_set(pats, 3, 0);
	bot_match_scratch *s = bot_match_scratch_new();
	assert_non_null(s);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(bot_match_first(m, text, strlen(text), s), -1);
	assert_int_equal(bot_match_first_slow(m, text, strlen(text), s), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (secs > 2.0)
		fail_msg("catastrophic patterns took %.2f s", secs);
	/* the limit hit is per pattern: a later pattern still answers */
	const char *text2 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa! izin";
	assert_int_equal(bot_match_first(m, text2, strlen(text2), s), 2);
	bot_match_scratch_free(s);
	bot_match_free(m);
}

struct collect {
	uint32_t ids[16];
	size_t n;
	size_t stop_after; /* 0: never stop */
};

static int collect_cb(void *ctx, uint32_t id)
{
	struct collect *c = ctx;
	if (c->n < 16)
		c->ids[c->n++] = id;
	return c->stop_after != 0 && c->n >= c->stop_after;
}

static void test_bot_match_each_order_and_stop(void **state)
{
	(void)state;
	/* a mix of filtered and unfiltered patterns, ids out of numeric order */
	static const char *const pats[] = {"\\bizin\\b", "\\bbuka\\b",		"iz[i]n",
					   "(?i)usaha",	 "\\bizin\\s+usaha\\b", ".*"};
	static const uint32_t want_all[] = {50, 10, 40, 20, 30};
	bot_match *m = bot_match_new();
	assert_non_null(m);
	const uint32_t ids[] = {50, 60, 10, 40, 20, 30};
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(bot_match_add(m, pats[i], strlen(pats[i]), ids[i], NULL, 0, NULL), 0);
	assert_int_equal(bot_match_build(m), 0);
	assert_int_equal(bot_match_unfiltered_count(m), 2);
	bot_match_scratch *s = bot_match_scratch_new();
	assert_non_null(s);
	const char *text = "Izin Usaha";

	struct collect c = {{0}, 0, 0};
	assert_int_equal(bot_match_each(m, text, strlen(text), s, collect_cb, &c), 5);
	assert_int_equal(c.n, 5);
	assert_memory_equal(c.ids, want_all, sizeof(want_all));

	struct collect c2 = {{0}, 0, 2};
	assert_int_equal(bot_match_each(m, text, strlen(text), s, collect_cb, &c2), 2);
	assert_int_equal(c2.n, 2);
	assert_int_equal(c2.ids[0], 50);
	assert_int_equal(c2.ids[1], 10);

	/* an early stop leaves no stale candidates behind for the next message */
	struct collect c3 = {{0}, 0, 0};
	assert_int_equal(bot_match_each(m, "buka", 4, s, collect_cb, &c3), 2);
	assert_int_equal(c3.ids[0], 60);
	assert_int_equal(c3.ids[1], 30);
	assert_int_equal(bot_match_first(m, "zzz", 3, s), 30);
	bot_match_scratch_free(s);
	bot_match_free(m);
}

/* Before bot_match_build, and with an empty list, matching still answers. */
static void test_bot_match_unbuilt_and_empty(void **state)
{
	(void)state;
	bot_match_scratch *s = bot_match_scratch_new();
	assert_non_null(s);
	bot_match *m = bot_match_new();
	assert_non_null(m);
	assert_int_equal(bot_match_first(m, "izin", 4, s), -1);
	assert_int_equal(bot_match_build(m), 0);
	assert_int_equal(bot_match_first(m, "izin", 4, s), -1);
	assert_int_equal(bot_match_count(m), 0);
	bot_match_free(m);

	m = bot_match_new();
	assert_non_null(m);
	assert_int_equal(bot_match_add(m, "\\bizin\\b", 8, 3, NULL, 0, NULL), 0);
	assert_int_equal(bot_match_first(m, "IZIN", 4, s), 3);
	bot_match_free(m);
	bot_match_free(NULL);
	bot_match_scratch_free(s);
	bot_match_scratch_free(NULL);
}

/* One scratch serves sets of different sizes in turn. */
static void test_bot_match_scratch_shared(void **state)
{
	(void)state;
	bot_match_scratch *s = bot_match_scratch_new();
	assert_non_null(s);
	bot_match *small = build_set(corpus, 3, 0);
	bot_match *big = build_set(corpus, NCORPUS, 100);
	assert_int_equal(bot_match_first(small, "formulir", 8, s), 2);
	assert_int_equal(bot_match_first(big, "kpn", 3, s), 104);
	assert_int_equal(bot_match_first(small, "kpn", 3, s), -1);
	assert_int_equal(bot_match_first(big, "formulir", 8, s), 102);
	bot_match_free(small);
	bot_match_free(big);
	bot_match_scratch_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bot_match_first_equals_slow),	  cmocka_unit_test(test_bot_match_each_pattern_sound),
	    cmocka_unit_test(test_bot_match_first_expected),	  cmocka_unit_test(test_bot_match_unfiltered),
	    cmocka_unit_test(test_bot_match_compile_error),	  cmocka_unit_test(test_bot_match_limit),
	    cmocka_unit_test(test_bot_match_each_order_and_stop), cmocka_unit_test(test_bot_match_unbuilt_and_empty),
	    cmocka_unit_test(test_bot_match_scratch_shared),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* bot_text: input normalisation (UTF-8 repair, invisible characters, whitespace,
 * length bound) and character-trigram similarity. No allocation. */
#include "bot/bot_text.h"

#include <stdlib.h>
#include <string.h>

#include "bot/bot.h"

/* Decodes one UTF-8 character at s (n bytes left). Returns its length and sets
 * *cp, or returns 0 when the bytes there are not valid UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c;
	size_t len;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

size_t bot_text_utf8_len(const char *s, size_t n)
{
	uint32_t cp;

	return n ? utf8_decode((const unsigned char *)s, n, &cp) : 0;
}

int bot_text_valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;

	for (size_t i = 0; i < len;) {
		size_t l = utf8_decode(p + i, len - i, &cp);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

static int is_invisible(uint32_t c)
{
	return c == 0x00ad || (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) ||
	       (c >= 0x2060 && c <= 0x2064) || (c >= 0x2066 && c <= 0x2069) || c == 0xfeff || c == 0x180e ||
	       c == 0x034f || (c >= 0xfe00 && c <= 0xfe0f);
}

static int is_space(uint32_t c)
{
	return c <= 0x20 || c == 0x7f || (c >= 0x80 && c <= 0xa0) || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
	       c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

size_t bot_text_normalize(const char *in, size_t len, char *out, size_t outcap)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t limit, o = 0;
	int pending_space = 0;

	if (outcap == 0)
		return 0;
	limit = outcap - 1 < BOT_INPUT_MAX ? outcap - 1 : BOT_INPUT_MAX;
	for (size_t i = 0; in && i < len;) {
		static const unsigned char repl[3] = {0xef, 0xbf, 0xbd};
		const unsigned char *src;
		uint32_t cp;
		size_t l;

		/* Fast path: printable ASCII is copied as it is. */
		if (p[i] > 0x20 && p[i] < 0x7f) {
			if (o + (pending_space ? 1 : 0) + 1 > limit)
				break;
			if (pending_space)
				out[o++] = ' ';
			pending_space = 0;
			out[o++] = (char)p[i++];
			continue;
		}
		l = utf8_decode(p + i, len - i, &cp);
		src = p + i;

		if (!l) {
			cp = 0xfffd;
			src = repl;
			l = 1; /* skip the one bad byte, emit U+FFFD */
		}
		i += l;
		if (is_invisible(cp))
			continue;
		if (is_space(cp)) {
			pending_space = o > 0;
			continue;
		}
		{
			size_t w = cp == 0xfffd && src == repl ? 3 : l;
			if (o + (pending_space ? 1 : 0) + w > limit)
				break;
			if (pending_space)
				out[o++] = ' ';
			pending_space = 0;
			memcpy(out + o, src, w);
			o += w;
		}
	}
	out[o] = '\0';
	return o;
}

/* ---- trigrams ---- */

size_t bot_trigrams(const char *text, size_t len, uint32_t *out, size_t max)
{
	unsigned char buf[BOT_INPUT_MAX + 3];
	size_t b = 0, n = 0;

	if (max > BOT_TRIGRAMS_MAX)
		max = BOT_TRIGRAMS_MAX;

	/* Map to " word word " over [a-z0-9] (other ASCII is a break; non-ASCII
	 * bytes are kept as letters), then take every 3-byte window. */
	buf[b++] = ' ';
	for (size_t i = 0; i < len && b < sizeof(buf) - 1; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80))
			c = ' ';
		if (c == ' ' && buf[b - 1] == ' ')
			continue;
		buf[b++] = c;
	}
	if (buf[b - 1] != ' ')
		buf[b++] = ' ';
	for (size_t i = 0; i + 3 <= b && n < max; i++)
		out[n++] = (uint32_t)buf[i] << 16 | (uint32_t)buf[i + 1] << 8 | buf[i + 2];
	/* LSD radix sort on the three bytes: linear in the trigram count. */
	{
		uint32_t tmp[BOT_TRIGRAMS_MAX];
		uint32_t *src = out, *dst = tmp;
		for (int shift = 0; shift < 24; shift += 8) {
			size_t count[257] = {0};
			for (size_t i = 0; i < n; i++)
				count[((src[i] >> shift) & 0xff) + 1]++;
			for (int v = 0; v < 256; v++)
				count[v + 1] += count[v];
			for (size_t i = 0; i < n; i++)
				dst[count[(src[i] >> shift) & 0xff]++] = src[i];
			src = src == out ? tmp : out;
			dst = dst == out ? tmp : out;
		}
		if (src != out)
			memcpy(out, src, n * sizeof(*out));
	}
	{
		size_t u = 0;
		for (size_t i = 0; i < n; i++)
			if (u == 0 || out[u - 1] != out[i])
				out[u++] = out[i];
		n = u;
	}
	return n;
}

double bot_trigram_sim(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
	size_t i = 0, j = 0, common = 0;

	if (na + nb == 0)
		return 0.0;
	while (i < na && j < nb) {
		if (a[i] == b[j]) {
			common++;
			i++;
			j++;
		} else if (a[i] < b[j]) {
			i++;
		} else {
			j++;
		}
	}
	return 2.0 * (double)common / (double)(na + nb);
}

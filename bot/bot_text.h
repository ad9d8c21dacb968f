/* bot_text: what the engine does to text before matching it, and the trigram
 * similarity behind "did you mean".
 *
 * Normalising makes any byte string safe and comparable: invalid UTF-8 becomes
 * U+FFFD, invisible characters (zero-width spaces and joiners, direction marks,
 * soft hyphens, the BOM) are removed, every run of whitespace or control
 * characters (Unicode spaces included) becomes one space, both ends are trimmed,
 * and the result is cut at BOT_INPUT_MAX bytes on a character boundary. */
#ifndef LOKET_BOT_TEXT_H
#define LOKET_BOT_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Normalises len bytes of in into out (outcap >= BOT_INPUT_MAX + 1 is always
 * enough); returns the length written (out is NUL-terminated). */
size_t bot_text_normalize(const char *in, size_t len, char *out, size_t outcap);

/* Length of the valid UTF-8 character at s (n > 0 bytes left), or 0 when the
 * bytes there are not valid UTF-8 (overlong, surrogate, truncated, > U+10FFFF). */
size_t bot_text_utf8_len(const char *s, size_t n);

/* 1 when s (len bytes) is valid UTF-8. */
int bot_text_valid_utf8(const char *s, size_t len);

#define BOT_TRIGRAMS_MAX 256

/* The character trigrams of text (ASCII letters and digits lower-cased, every
 * other character a word break, words padded with a space at each end), sorted
 * and without repeats, at most max of them. Returns how many. */
size_t bot_trigrams(const char *text, size_t len, uint32_t *out, size_t max);

/* Dice similarity of two trigram sets from bot_trigrams: 0 (nothing shared) to
 * 1 (the same). */
double bot_trigram_sim(const uint32_t *a, size_t na, const uint32_t *b, size_t nb);

#endif

/* The documentation keeps up with the code: every zeo.conf key the parser
 * accepts (zsrv__conf_keys, the parser's own tables) is in the example
 * etc/zeo.conf, in its section, and is an item of the man page's subsection
 * for that section; every command of `zeolite --help` has its subsection in
 * the man page, naming every option its --help names; the page renders
 * without a warning; and the example is the package's working zeo.conf. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"
#include "testutil.h"

#define EXAMPLE ZEOLITE_SOURCE_DIR "/etc/zeo.conf"
#define MAN_SOURCE ZEOLITE_SOURCE_DIR "/doc/zeolite.1.in"
#define MAN_BUILT ZEOLITE_BINARY_DIR "/doc/man/man1/zeolite.1"

TestSuite(docs, .timeout = 60);

/* ---- a set of strings ---------------------------------------------------- */

typedef struct strset {
    char **v;
    size_t n, cap;
} strset;

static int set_has(const strset *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], x))
            return 1;
    return 0;
}

static void set_add(strset *s, const char *x)
{
    if (set_has(s, x))
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 32;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        cr_assert(s->v);
    }
    cr_assert(s->v[s->n++] = strdup(x));
}

static void set_free(strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

/* "section/key", lower case. */
static void add_pair(strset *s, const char *section, const char *key, size_t keylen)
{
    char pair[160];
    snprintf(pair, sizeof pair, "%s/%.*s", section, (int)keylen, key);
    for (char *c = pair; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    set_add(s, pair);
}

static void on_key(void *arg, const char *section, const char *key)
{
    add_pair(arg, section, key, strlen(key));
}

/* The parser's keys; the test is empty-proof: the parser has dozens. */
static void parser_keys(strset *s)
{
    zsrv__conf_keys(on_key, s);
    cr_assert_gt(s->n, 30, "zsrv__conf_keys listed %zu keys", s->n);
}

static char *read_text(const char *path)
{
    size_t len;
    char *t = (char *)tu_read_file(path, &len);
    cr_assert(t, "cannot read %s", path);
    return t;
}

/* Every pair of want not in have, one a line (empty: none). */
static char *missing(const strset *want, const strset *have)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cr_assert(f);
    for (size_t i = 0; i < want->n; i++)
        if (!set_has(have, want->v[i]))
            fprintf(f, "  %s\n", want->v[i]);
    fclose(f);
    return out;
}

/* ---- the example zeo.conf ------------------------------------------------ */

/* The (section, key) pairs the example names, commented or not: a line,
 * past its blanks and one '#', is <type ...>, </type>, or a key and its
 * value inside the innermost open section. */
static void example_keys(const char *text, strset *out)
{
    char open[8][32];
    int depth = 0, line = 0;
    for (const char *p = text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
        line++;
        const char *s = p + strspn(p, " \t");
        if (*s == '#')
            s += 1 + strspn(s + 1, " \t");
        size_t word = strcspn(s, " \t\n>");
        if (s[0] == '<' && s[1] == '/') {
            cr_assert(depth > 0 && word - 2 == strlen(open[depth - 1]) &&
                      !strncasecmp(s + 2, open[depth - 1], word - 2),
                      "etc/zeo.conf:%d: a close that matches no open section", line);
            depth--;
        } else if (s[0] == '<') {
            cr_assert(depth < 8 && word - 1 < sizeof open[0], "etc/zeo.conf:%d", line);
            snprintf(open[depth++], sizeof open[0], "%.*s", (int)(word - 1), s + 1);
        } else if (depth && isalpha((unsigned char)*s)) {
            add_pair(out, open[depth - 1], s, word);
        }
    }
    cr_assert_eq(depth, 0, "etc/zeo.conf: a section is not closed");
}

Test(docs, every_zeo_conf_key_is_in_the_example_in_its_section)
{
    strset keys = {0}, named = {0};
    parser_keys(&keys);
    char *text = read_text(EXAMPLE);
    example_keys(text, &named);
    char *miss = missing(&keys, &named);
    cr_expect_str_empty(miss, "keys the parser accepts that etc/zeo.conf does not show "
                              "(commented, in their section):\n%s", miss);
    free(miss);
    free(text);
    set_free(&keys);
    set_free(&named);
}

/* As shipped, the example is the package's zeo.conf: it parses, and serves
 * /var/lib/zeolite as storage 1 on 127.0.0.1:8100, logging to stderr. */
Test(docs, the_example_is_the_packages_configuration)
{
    zsrv_config c;
    zerr err = {0};
    zsrv_config_init(&c);
    cr_assert_eq(zsrv_config_file(&c, EXAMPLE, &err), 0, "%s", err.msg);
    cr_assert_eq(zsrv_config_check(&c, &err), 0, "%s", err.msg);
    cr_expect_str_eq(c.address, "127.0.0.1:8100");
    cr_assert_eq(c.n_storages, 1);
    cr_expect_str_eq(c.storages[0].name, "1");
    cr_expect_str_eq(c.storages[0].path, "/var/lib/zeolite");
    cr_assert_eq(c.n_log_handlers, 1);
    cr_expect_eq(c.log_handlers[0].kind, ZSRV_LOGH_FILE);
    cr_expect_str_eq(c.log_handlers[0].path, "STDERR");
    zsrv_config_free(&c);
}

/* ---- the man page -------------------------------------------------------- */

/* A line of roff as text: font escapes and quotes gone, \- a hyphen. */
static void plain(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (in[i] == '\\' && i + 1 < n && in[i + 1] == 'f' && i + 2 < n) {
            i += 2;
        } else if (in[i] == '\\' && i + 1 < n && in[i + 1] == '-') {
            out[o++] = '-';
            i++;
        } else if (in[i] != '"') {
            out[o++] = in[i];
        }
    }
    out[o] = 0;
}

/* The man page's subsections (.SS) in order: title, section (.SH) and
 * text, made plain. */
typedef struct subsection {
    char title[128], section[64];
    char *text;
    size_t len;
} subsection;

static size_t man_subsections(const char *page, subsection *ss, size_t cap)
{
    size_t n = 0;
    char section[64] = "";
    FILE *f = NULL;
    for (const char *p = page; *p;) {
        size_t len = strcspn(p, "\n");
        char line[1024];
        plain(p, len, line, sizeof line);
        if (!strncmp(line, ".SH ", 4) || !strncmp(line, ".SS ", 4)) {
            if (f)
                fclose(f), f = NULL;
            cr_assert_lt(strlen(line + 4), sizeof ss[0].section, "a long title: %s", line);
            if (line[2] == 'H') {
                memcpy(section, line + 4, strlen(line + 4) + 1);
            } else {
                cr_assert_lt(n, cap);
                memcpy(ss[n].title, line + 4, strlen(line + 4) + 1);
                memcpy(ss[n].section, section, sizeof section);
                cr_assert(f = open_memstream(&ss[n].text, &ss[n].len));
                n++;
            }
        } else if (f) {
            fprintf(f, "%s\n", line);
        }
        p += len + (p[len] == '\n');
    }
    if (f)
        fclose(f);
    return n;
}

static void subsections_free(subsection *ss, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ss[i].text);
}

/* The man page's items per zeo.conf section: the tag (the line after .TP)
 * of every item of a CONFIGURATION FILE subsection, for each <section> its
 * title names. */
static void man_keys(const subsection *ss, size_t n, strset *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ss[i].section, "CONFIGURATION FILE"))
            continue;
        for (const char *t = strstr(ss[i].text, ".TP\n"); t; t = strstr(t + 1, ".TP\n")) {
            const char *tag = t + 4;
            if (*tag == '.')
                tag += strcspn(tag, " \n"), tag += strspn(tag, " ");
            size_t word = strcspn(tag, " \n");
            for (const char *s = strchr(ss[i].title, '<'); s; s = strchr(s + 1, '<')) {
                char name[32];
                size_t nl = strcspn(s + 1, " >");
                snprintf(name, sizeof name, "%.*s", (int)nl, s + 1);
                add_pair(out, name, tag, word);
            }
        }
    }
}

Test(docs, every_zeo_conf_key_is_an_item_of_its_sections_man_page)
{
    strset keys = {0}, items = {0};
    parser_keys(&keys);
    char *page = read_text(MAN_SOURCE);
    subsection ss[64];
    size_t n = man_subsections(page, ss, 64);
    man_keys(ss, n, &items);
    char *miss = missing(&keys, &items);
    cr_expect_str_empty(miss, "keys the parser accepts that zeolite(1) does not describe (an "
                              "item of a CONFIGURATION FILE subsection titled <section>):\n%s",
                        miss);
    free(miss);
    subsections_free(ss, n);
    free(page);
    set_free(&keys);
    set_free(&items);
}

/* Standard output of `zeolite ARGS`, malloc'd. */
static char *zeolite_out(const char *args)
{
    char cmd[1024], *out = NULL;
    size_t len = 0;
    snprintf(cmd, sizeof cmd, "'%s' %s", tu_zeolite_bin(), args);
    FILE *p = popen(cmd, "r"), *m = open_memstream(&out, &len);
    cr_assert(p && m);
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0)
        fwrite(buf, 1, got, m);
    fclose(m);
    cr_assert_eq(pclose(p), 0, "%s failed", cmd);
    return out;
}

static int is_word(char c)
{
    return isalnum((unsigned char)c) || c == '-';
}

/* 1 when text holds the option opt as a whole word. */
static int names_option(const char *text, const char *opt)
{
    size_t n = strlen(opt);
    for (const char *s = strstr(text, opt); s; s = strstr(s + 1, opt))
        if ((s == text || !is_word(s[-1])) && !is_word(s[n]))
            return 1;
    return 0;
}

/* The options a --help text names: -x and --long words that start a word. */
static void help_options(const char *help, strset *out)
{
    for (const char *s = help; (s = strchr(s, '-')); s++) {
        if (s > help && !strchr(" \t\n[(,|", s[-1]))
            continue;
        size_t dashes = s[1] == '-' ? 2 : 1;
        if (!isalpha((unsigned char)s[dashes]))
            continue;
        size_t n = dashes + 1;
        while (is_word(s[n]) && dashes == 2)
            n++;
        if (dashes == 1 && is_word(s[n]))
            continue;   /* "-ms" and the like: not one option */
        char opt[64];
        snprintf(opt, sizeof opt, "%.*s", (int)n, s);
        set_add(out, opt);
    }
}

Test(docs, every_command_and_its_options_are_in_the_man_page)
{
    char *page = read_text(MAN_SOURCE), *usage = zeolite_out("--help");
    subsection ss[64];
    size_t n = man_subsections(page, ss, 64), commands = 0;
    for (const char *l = strstr(usage, "\n  zeolite "); l; l = strstr(l + 1, "\n  zeolite ")) {
        char name[32], args[64];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(l + 11, " \n"), l + 11);
        commands++;
        /* its own subsection and the shared ones of COMMANDS */
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        int own = 0;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(ss[i].section, "COMMANDS"))
                continue;
            int mine = !strcmp(ss[i].title, name);
            own |= mine;
            if (mine || !strstr(usage, ss[i].title))
                fputs(ss[i].text, m);
        }
        fclose(m);
        cr_expect(own, "zeolite(1) has no subsection .SS %s in COMMANDS", name);
        snprintf(args, sizeof args, "%s --help", name);
        char *help = zeolite_out(args);
        strset opts = {0};
        help_options(help, &opts);
        cr_expect_gt(opts.n, 0, "zeolite %s --help names no option: %s", name, help);
        for (size_t i = 0; i < opts.n; i++)
            cr_expect(names_option(text, opts.v[i]), "zeolite(1) does not describe %s of "
                      "zeolite %s (in its subsection or a shared one)", opts.v[i], name);
        set_free(&opts);
        free(help);
        free(text);
    }
    cr_expect_geq(commands, 10, "zeolite --help lists %zu commands: %s", commands, usage);
    subsections_free(ss, n);
    free(usage);
    free(page);
}

/* man's own check, as lintian runs it: no warning from groff. */
Test(docs, the_man_page_renders_without_a_warning)
{
    char *dir = tu_tmpdir("docs"), cmd[2048];
    snprintf(cmd, sizeof cmd, "LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 "
             "-l -Tutf8 -Z '%s' > '%s/out' 2> '%s/err'", MAN_BUILT, dir, dir);
    int rc = system(cmd);
    char *err = tu_path(dir, "err"), *out = tu_path(dir, "out");
    size_t elen = 0, olen = 0;
    char *etext = (char *)tu_read_file(err, &elen), *otext = (char *)tu_read_file(out, &olen);
    cr_expect_eq(rc, 0, "%s: %s", cmd, etext);
    cr_expect(etext && elen == 0, "man --warnings: %s", etext);
    cr_expect_gt(olen, 10000, "the page rendered to %zu bytes", olen);
    free(etext);
    free(otext);
    free(err);
    free(out);
    tu_rmrf(dir);
    free(dir);
}

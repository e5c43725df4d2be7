/* replay.c - run a fuzz target over its corpus without libFuzzer.
 *
 * Linked with one tests/fuzz/fuzz_*.c, it calls LLVMFuzzerTestOneInput
 * once per file named on the command line (a directory stands for every
 * regular file in it, in name order) and prints TAP: the plan, then
 * "ok N - DIR/FILE" after each input. A target that finds an invariant
 * broken aborts, which shows as a short plan. Built by make check with
 * the ordinary compiler, so that the seed corpora are regression tests. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
    char *path;  /* to open */
    char *label; /* to print: last directory / file name */
};

static struct input *inputs;
static size_t ninputs, capinputs;

static void die(const char *what, const char *path)
{
    printf("Bail out! %s: %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static char *join(const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *s = malloc(la + ls + lb + 1);
    if (!s)
        die("out of memory", a);
    memcpy(s, a, la);
    memcpy(s + la, sep, ls);
    memcpy(s + la + ls, b, lb + 1);
    return s;
}

static const char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t i = n;
    while (i > 0 && path[i - 1] != '/')
        i--;
    return path + i;
}

static void add(char *path, char *label)
{
    if (ninputs == capinputs) {
        capinputs = capinputs ? 2 * capinputs : 64;
        struct input *v = realloc(inputs, capinputs * sizeof *v);
        if (!v)
            die("out of memory", path);
        inputs = v;
    }
    inputs[ninputs++] = (struct input){path, label};
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        die("cannot open directory", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", and hidden files */
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **v = realloc(names, cap * sizeof *v);
            if (!v)
                die("out of memory", dir);
            names = v;
        }
        names[n] = join(e->d_name, "", "");
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    /* the label names the directory without its trailing slashes */
    const char *b = base_name(dir);
    size_t bl = strcspn(b, "/");
    char *dname = malloc(bl + 1);
    if (!dname)
        die("out of memory", dir);
    memcpy(dname, b, bl);
    dname[bl] = '\0';
    for (size_t i = 0; i < n; i++) {
        char *path = join(dir, "/", names[i]);
        struct stat st;
        if (stat(path, &st) < 0)
            die("cannot stat", path);
        if (!S_ISREG(st.st_mode)) {
            free(path);
        } else {
            add(path, join(dname, "/", names[i]));
        }
        free(names[i]);
    }
    free(dname);
    free(names);
}

/* The whole file in a buffer of exactly its size (so that a sanitizer
 * sees a read past the end). *size is set; NULL only for size 0. */
static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open", path);
    uint8_t *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *p = realloc(data, cap);
            if (!p)
                die("out of memory", path);
            data = p;
        }
        size_t r = fread(data + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                die("cannot read", path);
            break;
        }
    }
    fclose(f);
    uint8_t *exact = NULL;
    if (n) {
        exact = malloc(n);
        if (!exact)
            die("out of memory", path);
        memcpy(exact, data, n);
    }
    free(data);
    *size = n;
    return exact;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS-DIR-OR-FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0)
            die("cannot stat", argv[i]);
        if (S_ISDIR(st.st_mode))
            add_dir(argv[i]);
        else
            add(join(argv[i], "", ""), join(base_name(argv[i]), "", ""));
    }
    printf("1..%zu\n", ninputs);
    fflush(stdout);
    for (size_t i = 0; i < ninputs; i++) {
        size_t size;
        uint8_t *data = slurp(inputs[i].path, &size);
        /* libFuzzer never passes NULL; neither do we */
        static const uint8_t empty[1];
        LLVMFuzzerTestOneInput(data ? data : empty, size);
        free(data);
        printf("ok %zu - %s\n", i + 1, inputs[i].label);
        fflush(stdout);
        free(inputs[i].path);
        free(inputs[i].label);
    }
    free(inputs);
    return 0;
}

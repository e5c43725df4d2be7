/* cli_main.c - siogate, the gateway CLI.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage or configuration
 * error, 3 the store stayed locked past its timeout. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "store.h"

enum { EXIT_USAGE = 2, EXIT_LOCKED = 3 };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: siogate [--conf FILE] COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  init       create the store (or bring it to the latest schema)\n"
            "  migrate    the same as init\n"
            "\n"
            "options:\n"
            "  --conf FILE  configuration file (default %s)\n"
            "  --help       this text\n",
            SG_DEFAULT_CONF);
}

static int cmd_init(const sg_config *cfg)
{
    sg_store *s = sg_store_open(cfg->db);
    if (!s)
        return 1;
    sg_store_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"conf", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *conf = SG_DEFAULT_CONF;
    int o;
    sg_log_init("siogate", SG_LOG_WARN);
    while ((o = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            conf = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "siogate: no command given; try 'siogate --help'\n");
        return EXIT_USAGE;
    }
    const char *cmd = argv[optind];
    int (*fn)(const sg_config *) = NULL;
    if (strcmp(cmd, "init") == 0 || strcmp(cmd, "migrate") == 0)
        fn = cmd_init;
    if (!fn) {
        fprintf(stderr, "siogate: unknown command '%s'; try 'siogate --help'\n", cmd);
        return EXIT_USAGE;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "siogate %s: unexpected argument '%s'\n", cmd, argv[optind + 1]);
        return EXIT_USAGE;
    }
    sg_config cfg;
    char err[512] = "out of memory";
    if (sg_config_defaults(&cfg) < 0 || sg_config_load(&cfg, conf, err, sizeof err) < 0) {
        fprintf(stderr, "siogate: %s\n", err);
        sg_config_free(&cfg);
        return EXIT_USAGE;
    }
    int rc = fn(&cfg);
    sg_config_free(&cfg);
    return rc;
}

/* cmd_serve.c: `zeolite serve`, the ZEO server. */
#include <stdio.h>

#include "server/server.h"
#include "tools/cli.h"
#include "tools/commands.h"

int cmd_serve(int argc, char **argv)
{
    zsrv_config cfg;
    zerr err = {0};
    zsrv_config_init(&cfg);
    int rc = zsrv_config_args(&cfg, argc, argv, &err);
    if (rc > 0) {
        if (rc == 2)
            cli_print_version(stdout);
        zsrv_config_free(&cfg);
        return 0;
    }
    if (rc < 0) {
        /* One line: under systemd the whole usage would bury the cause in
         * the journal. */
        fprintf(stderr, "zeolite serve: %s (see 'zeolite serve --help')\n", err.msg);
        zsrv_config_free(&cfg);
        return 2;
    }
    if (zsrv_config_check(&cfg, &err) < 0) {
        fprintf(stderr, "zeolite serve: %s\n", err.msg);
        zsrv_config_free(&cfg);
        return 2;
    }
    rc = zsrv_run(&cfg, &err);
    if (rc < 0)
        fprintf(stderr, "zeolite serve: %s\n", err.msg);
    else if (cfg.test_only)
        printf("zeolite serve: the configuration is good: %zu storage%s on %s\n",
               cfg.n_storages, cfg.n_storages == 1 ? "" : "s", cfg.address);
    zsrv_config_free(&cfg);
    return rc < 0 ? 1 : rc;
}

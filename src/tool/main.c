/* main.c: p11id, the identity lifecycle with keys on PKCS#11 tokens: the
 * command table and dispatch. One cmd_<name>.c per command. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tool/tool.h"

static const struct command {
    const char *name;
    tool_cmd_fn main;
    const char *summary;
    const char *help;
} commands[] = {
    { "tokens", cmd_tokens_main, "list modules, slots and tokens",
      cmd_tokens_help },
    { "objects", cmd_objects_main, "list keys and certificates with URIs",
      cmd_objects_help },
    { "keygen", cmd_keygen_main, "generate a key pair on a token",
      cmd_keygen_help },
    { "csr", cmd_csr_main, "make a certificate request signed on the token",
      cmd_csr_help },
    { "ca", cmd_ca_main, "a CA whose key is on a token: init, sign, revoke, "
                         "crl, list", cmd_ca_help },
    { "import", cmd_import_main, "store a certificate beside its key",
      cmd_import_help },
    { "keyfile", cmd_keyfile_main, "write a key reference file",
      cmd_keyfile_help },
    { "check", cmd_check_main, "diagnose an identity", cmd_check_help },
    { "probe", cmd_probe_main, "try a mutual-TLS handshake and explain it",
      cmd_probe_help },
    { "renew", cmd_renew_main, "renew a certificate (new key or same)",
      cmd_renew_help },
    { "pin", cmd_pin_main, "PIN status, change, unblock", cmd_pin_help },
    { "config", cmd_config_main, "print the configuration for an "
                                 "application", cmd_config_help },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_overview(FILE *fp)
{
    size_t i;

    fprintf(fp, "usage: p11id <command> [options]\n"
                "       p11id help <command>\n\n"
                "Keys stay on PKCS#11 tokens; every object is named by a "
                "pkcs11: URI.\n\ncommands:\n");
    for (i = 0; i < NCOMMANDS; i++)
        fprintf(fp, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(fp, "\noptions every command takes:\n"
                "  --module PATH     PKCS#11 module (default: $P11ID_MODULE, "
                "else p11-kit's)\n"
                "  --pin-file FILE   the user PIN is the first line of FILE\n"
                "  --pin-env NAME    the user PIN is in variable NAME\n"
                "                    (otherwise p11id asks, without echo)\n"
                "  --json            machine-readable output of listings\n"
                "  --force           overwrite files that exist\n"
                "exit codes: 0 done, 1 failed, 2 usage, 3 PIN problem\n");
}

void tool_print_help(const char *cmd, FILE *fp)
{
    size_t i;

    for (i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, cmd) == 0) {
            fprintf(fp, "%s", commands[i].help);
            return;
        }
    print_overview(fp);
}

int main(int argc, char **argv)
{
    TOOL t;
    size_t i;
    int rc;

    memset(&t, 0, sizeof(t));
    t.module = getenv("P11ID_MODULE");
    if (t.module != NULL && *t.module == '\0')
        t.module = NULL;
    if (argc < 2 || strcmp(argv[1], "--help") == 0
        || strcmp(argv[1], "-h") == 0) {
        print_overview(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("%s\n", PACKAGE_STRING);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        tool_print_help(argc > 2 ? argv[2] : "", stdout);
        return EXIT_OK;
    }
    for (i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, argv[1]) == 0)
            break;
    if (i == NCOMMANDS) {
        fprintf(stderr, "p11id: unknown command \"%s\" (p11id --help lists "
                        "them)\n", argv[1]);
        return EXIT_USAGE;
    }
    t.cmd = commands[i].name;
    rc = commands[i].main(&t, argc - 1, argv + 1);
    tool_cleanup(&t);
    return rc;
}

/* cmd_ca.c: placeholder while the command is being written. */
#include "tool/tool.h"

const char cmd_ca_help[] = "p11id ca: being written\n";

int cmd_ca_main(TOOL *t, int argc, char **argv)
{
    tool_err(t, "not built yet");
    return EXIT_FAIL;
}

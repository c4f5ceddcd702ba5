/* cmd_renew.c: placeholder while the command is being written. */
#include "tool/tool.h"

const char cmd_renew_help[] = "p11id renew: being written\n";

int cmd_renew_main(TOOL *t, int argc, char **argv)
{
    tool_err(t, "not built yet");
    return EXIT_FAIL;
}

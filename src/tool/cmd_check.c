/* cmd_check.c: placeholder while the command is being written. */
#include "tool/tool.h"

const char cmd_check_help[] = "p11id check: being written\n";

int cmd_check_main(TOOL *t, int argc, char **argv)
{
    tool_err(t, "not built yet");
    return EXIT_FAIL;
}

/* cmd_probe.c: placeholder while the command is being written. */
#include "tool/tool.h"

const char cmd_probe_help[] = "p11id probe: being written\n";

int cmd_probe_main(TOOL *t, int argc, char **argv)
{
    tool_err(t, "not built yet");
    return EXIT_FAIL;
}

/* cmd_config.c: placeholder while the command is being written. */
#include "tool/tool.h"

const char cmd_config_help[] = "p11id config: being written\n";

int cmd_config_main(TOOL *t, int argc, char **argv)
{
    tool_err(t, "not built yet");
    return EXIT_FAIL;
}

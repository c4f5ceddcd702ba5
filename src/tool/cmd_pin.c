/* cmd_pin.c: placeholder while the command is being written. */
#include "tool/tool.h"

const char cmd_pin_help[] = "p11id pin: being written\n";

int cmd_pin_main(TOOL *t, int argc, char **argv)
{
    tool_err(t, "not built yet");
    return EXIT_FAIL;
}

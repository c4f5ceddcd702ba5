/* cmd_csr.c: placeholder while the command is being written. */
#include "tool/tool.h"

const char cmd_csr_help[] = "p11id csr: being written\n";

int cmd_csr_main(TOOL *t, int argc, char **argv)
{
    tool_err(t, "not built yet");
    return EXIT_FAIL;
}

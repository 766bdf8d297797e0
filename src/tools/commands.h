/* commands.h: the subcommands of the zeolite executable.
 *
 * Each cmd_NAME takes the arguments after the subcommand name (argv[0] is the
 * subcommand itself), prints errors to stderr and returns the exit status.
 * Each lives in its own cmd_NAME.c next to the module it drives; main.c only
 * dispatches. They are declared weak so that a build missing a module still
 * links and says which command is absent.
 */
#ifndef ZEOLITE_COMMANDS_H
#define ZEOLITE_COMMANDS_H

#define ZL_CMD(name) int cmd_##name(int argc, char **argv) __attribute__((weak))

ZL_CMD(serve);
ZL_CMD(import);
ZL_CMD(export);
ZL_CMD(verify);
ZL_CMD(backup);
ZL_CMD(status);
ZL_CMD(pack);
ZL_CMD(last_tid);
ZL_CMD(info);
ZL_CMD(bench);

#undef ZL_CMD

#endif

/* The command line as one shell-quoted string, recorded in output files (HDF5 "command_line"). */
#ifndef SS_CMDLINE_H
#define SS_CMDLINE_H

/* argv[0..argc) joined by spaces, each argument single-quoted when it holds a character outside
 * [A-Za-z0-9@%+=:,./_-] (or is empty), malloc'd; NULL when out of memory. */
char *cmdline_join(int argc, char **argv);

#endif

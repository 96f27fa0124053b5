/* HDF5's own explanation of a failed call, for the messages of the HDF5 readers and writers. */
#ifndef SS_H5_ERROR_H
#define SS_H5_ERROR_H

#include <stddef.h>

/* Copies the innermost (most specific) description on HDF5's error stack into buf ("" when the
 * stack is empty) and clears the stack. */
void h5_error_take(char *buf, size_t len);

#endif

/* cmpiabi.h -- checks CSources/FFMPI/include/ffmpi_abi.h against the installed mpi.h. */
#ifndef CMPIABI_H
#define CMPIABI_H
/* 0 when every declared value matches; else the number of mismatches, each described
 * (one per line) in out. */
int cmpiabi_check(char *out, int len);
/* OMPI_MAJOR_VERSION.OMPI_MINOR_VERSION of the header, e.g. 401. */
int cmpiabi_header_version(void);
#endif

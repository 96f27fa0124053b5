/* Scale-out of sparsity-scan over MPI ranks (docs/mpi.md): which rank scans which tensor pair, the
 * agreement on an error status, and the gathering of every pair's results to rank 0.
 *
 * Built with Open MPI (SS_HAVE_MPI) MPI is used only when the process was started by a launcher
 * (mpirun, srun: OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK is set); a plain run never calls
 * MPI_Init and is one process of rank 0 of 1, as is every run of a build without MPI. All
 * collective functions below are then no-ops that return at once.
 *
 * The protocol of sparsity-scan A B under N ranks: every rank opens A and B and matches the
 * pairs (the listings are small); scan_mpi_partition gives each pair one owner; each rank scans
 * the pairs it owns; scan_mpi_agree makes every rank return the same status (that of the lowest
 * failing rank, with its message); scan_mpi_gather sends the owned pairs' counts, histograms
 * and masks to rank 0, which then holds exactly what one process would have computed; only
 * rank 0 builds maps and --rank, writes --h5 and prints; scan_mpi_share_status makes every rank
 * exit with rank 0's final status. */
#ifndef SS_SCAN_MPI_H
#define SS_SCAN_MPI_H

#include <stddef.h>
#include <stdint.h>

#include "analyze/scan_report.h"
#include "formats/ss_error.h"

/* Starts MPI when launched by mpirun (see above). Returns 0, or SS_EUSAGE with a message when
 * launched with more than one rank by a build without MPI support (every rank would otherwise
 * scan and print everything). Call once, first thing in main. */
int scan_mpi_init(int *argc, char ***argv, SsError *err);
/* MPI_Finalize when scan_mpi_init started MPI. Every rank must get here. */
void scan_mpi_finalize(void);

/* This process's rank and the number of ranks (0 and 1 without MPI). */
int scan_mpi_rank(void);
int scan_mpi_size(void);

/* Threads per rank for --threads 0: the cores divided among the ranks on this node
 * (OMPI_COMM_WORLD_LOCAL_SIZE), at least 1; 0 (all cores) without MPI. */
int scan_mpi_default_threads(void);

/* The owner of each of n pairs of bytes[i] among nranks ranks: largest first (ties: lower index
 * first) onto the least loaded rank so far (ties: the lower rank). Deterministic, so every rank
 * computes the same plan. owner: n ints. */
void scan_mpi_partition(const uint64_t *bytes, size_t n, int nranks, int *owner);

/* Collective: every rank passes its status rc (0 or an SS_E* code). All get back the status of
 * the lowest rank that failed (0 when none did), and err filled with that rank's message. */
int scan_mpi_agree(int rc, SsError *err);

/* Collective: rank 0's rc (and message) on every rank. */
int scan_mpi_share_status(int rc, SsError *err);

/* Collective, after every rank scanned the pairs owner[] gives it: sends each pair's counts,
 * histogram (when r->hists) and mask (when r->masks) from its owner to rank 0, in pair order,
 * into r's arrays there (rank 0's masks must be allocated for every pair). Returns 0 or
 * SS_EOUTPUT (an MPI call failed; the caller then agrees on the status). */
int scan_mpi_gather(ScanReport *r, const int *owner, SsError *err);

#endif

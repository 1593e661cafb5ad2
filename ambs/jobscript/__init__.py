"""What a job script needs besides its template: the MPI launcher and its
check (:mod:`.launcher`), the ranks' placement on GPU nodes (:mod:`.placement`)
and a cluster's own submit settings (:mod:`.config`)."""

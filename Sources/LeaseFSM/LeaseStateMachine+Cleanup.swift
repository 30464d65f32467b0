/// Cleanup jobs: scheduling, outcomes, dead letters, supersession.
extension LeaseStateMachine {
    /// Creates the pending cleanup job of an object whose last lease ended.
    mutating func scheduleCleanup(of object: ObjectKey, incarnation: UInt64, source: CleanupSource) -> JobID {
        jobSequence += 1
        let job = CleanupJob(
            id: jobSequence, object: object, incarnation: incarnation, leaseID: source.leaseID,
            serviceID: source.serviceID, metadata: source.metadata, spec: source.spec,
            fencingToken: source.fencingToken, attempts: 0, nextAttemptAt: now, state: .pending, lastError: "",
            createdAt: now, finishedAt: nil)
        jobs[job.id] = job
        indexes.openJobByObject[object] = job.id
        indexes.pendingJobs.insert(job)
        return job.id
    }

    /// The object is leased again: its open cleanup (pending or dead-lettered)
    /// belongs to the previous incarnation and must not delete the new one.
    mutating func supersedeOpenJob(of object: ObjectKey, newIncarnation: UInt64, events: inout EventRecorder) {
        guard let id = indexes.openJobByObject[object], var job = jobs[id] else { return }
        indexes.openJobByObject[object] = nil
        indexes.pendingJobs.remove(job)
        indexes.deadLetteredJobs.remove(id)
        job.state = .superseded
        job.finishedAt = now
        job.lastError = "object leased again (incarnation \(newIncarnation)) before its cleanup succeeded"
        jobs[id] = job
        indexes.finishedJobs.append(id)
        events.record(.cleanupSuperseded, job: job, at: now, reason: job.lastError)
    }

    /// Records one attempt's outcome; returns nil for a stale outcome.
    mutating func record(_ o: LeaseCommand.CleanupOutcome, events: inout EventRecorder) -> CleanupJob? {
        guard var job = jobs[o.jobID], job.state == .pending, job.attempts &+ 1 == o.attempt else { return nil }
        indexes.pendingJobs.remove(job)
        job.attempts += 1
        stats.cleanupAttempts += 1
        switch o.result {
        case .succeeded:
            job.state = .succeeded
            job.finishedAt = now
            job.lastError = ""
            indexes.openJobByObject[job.object] = nil
            indexes.finishedJobs.append(job.id)
            stats.cleanupSucceeded += 1
            events.record(.cleanupSucceeded, job: job, at: now)
        case .failed(let error, let retryAfter, let permanent):
            stats.cleanupFailures += 1
            job.lastError = String(error.prefix(1024))
            if permanent || job.attempts > job.spec.maxRetries {
                job.state = .deadLettered
                indexes.deadLetteredJobs.insert(job.id)
                stats.deadLettered += 1
                events.record(.cleanupDeadLettered, job: job, at: now, reason: job.lastError)
            } else {
                job.nextAttemptAt = now.adding(milliseconds: max(0, retryAfter))
                indexes.pendingJobs.insert(job)
                events.record(.cleanupFailed, job: job, at: now, reason: job.lastError)
            }
        }
        jobs[job.id] = job
        return job
    }

    /// Puts dead-lettered jobs back in the queue with a fresh retry budget.
    mutating func retry(_ r: LeaseCommand.RetryDeadLetters, events: inout EventRecorder) -> [JobID] {
        var retried: [JobID] = []
        for id in Set(r.jobIDs).sorted() {
            guard var job = jobs[id], job.state == .deadLettered else { continue }
            job.state = .pending
            job.attempts = 0
            job.nextAttemptAt = now
            jobs[id] = job
            indexes.deadLetteredJobs.remove(id)
            indexes.pendingJobs.insert(job)
            events.record(.cleanupRetried, job: job, at: now, reason: "retried by operator after: \(job.lastError)")
            retried.append(id)
        }
        return retried
    }
}

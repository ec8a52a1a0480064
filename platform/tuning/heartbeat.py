"""The heartbeat thread of background jobs, under the name it had before it moved to
`common.jobs` (which both the tuning and the rewards app use)."""

from common.jobs import beating as beating

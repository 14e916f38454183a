"""The probe engine: parameters, steps, records, cleanup; and the devices probes use."""

-- One row per appeal with response/resolution times and the repeat / duplicate flags.
--   repeat contact   the same customer opened another appeal (any topic, any channel) in the
--                    repeat_contact_days before this one
--   linked duplicate status linked: a repeat on the same topic joined to the first appeal of
--                    the case (not a new case); cross-channel when its channel differs from
--                    the first appeal's
--   settled_at       first of resolved_at / closed_at (a reopen clears them in the source)
{{ appeal_lifecycle(ref('stg_crm__appeals'), ref('stg_crm__appeals')) }}

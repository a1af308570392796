{{ config(tags=['realtime']) }}

-- Topics with their root (top-level) topic: the tree is walked recursively.
with recursive topics as (

    select * from {{ ref('stg_crm__topics') }}

),

tree as (

    select
        topic_id,
        topic_id as root_topic_id,
        1 as depth
    from topics
    where parent_topic_id is null

    union all

    select
        child.topic_id,
        tree.root_topic_id,
        tree.depth + 1
    from topics as child
    inner join tree on child.parent_topic_id = tree.topic_id
    where tree.depth < 32

),

final as (

    select
        t.topic_id,
        t.code,
        t.name,
        t.parent_topic_id,
        t.active as is_active,
        tree.root_topic_id,
        root.code as root_code,
        root.name as root_name,
        tree.depth
    from topics as t
    left join tree on tree.topic_id = t.topic_id
    left join topics as root on root.topic_id = tree.root_topic_id

)

select * from final

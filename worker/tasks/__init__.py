"""Task entry points, one module per Dify area; thin wrappers over ``worker.domain``.

Every task is importable from here by its Dify name, so ported code changes only its imports:
``from worker.tasks import document_indexing_task``.
"""

from __future__ import annotations

from worker.tasks.annotation import (
    add_annotation_to_index_task,
    batch_import_annotations_task,
    delete_annotation_index_task,
    disable_annotation_reply_task,
    enable_annotation_reply_task,
    update_annotation_to_index_task,
)
from worker.tasks.app_deletion import delete_account_task, remove_app_and_related_data_task
from worker.tasks.cleanup import (
    batch_clean_document_task,
    clean_dataset_task,
    clean_document_task,
    clean_notion_document_task,
)
from worker.tasks.housekeeping import (
    clean_document_notify_tenant_task,
    clean_embedding_cache_task,
    clean_unused_datasets_task,
    mail_clean_document_notify_task,
    queue_monitor_task,
    send_queue_monitor_alert_task,
)
from worker.tasks.index_ops import (
    add_document_to_index_task,
    deal_dataset_vector_index_task,
    remove_document_from_index_task,
)
from worker.tasks.indexing import (
    document_indexing_sync_task,
    document_indexing_task,
    document_indexing_update_task,
    duplicate_document_indexing_task,
    normal_document_indexing_task,
    priority_document_indexing_task,
    recover_document_indexing_task,
    retry_document_indexing_task,
    sync_website_document_indexing_task,
)
from worker.tasks.mail import (
    send_account_deletion_verification_code,
    send_change_mail_completed_notification_task,
    send_change_mail_task,
    send_deletion_success_task,
    send_email_code_login_mail_task,
    send_invite_member_mail_task,
    send_new_owner_transfer_notify_email_task,
    send_old_owner_transfer_notify_email_task,
    send_owner_transfer_confirm_task,
    send_reset_password_mail_task,
    send_reset_password_mail_task_when_account_not_exist,
)
from worker.tasks.mail_enterprise import send_enterprise_email_task, send_inner_email_task
from worker.tasks.maintenance import recover_stuck_documents_task
from worker.tasks.ops_trace import process_trace_tasks, sweep_trace_payloads_task
from worker.tasks.plugins import (
    check_upgradable_plugin_task,
    process_tenant_plugin_autoupgrade_check_task,
)
from worker.tasks.retention import prune_finished_jobs_task
from worker.tasks.segments import (
    batch_create_segment_to_index_task,
    delete_segment_from_index_task,
    disable_segment_from_index_task,
    disable_segments_from_index_task,
    enable_segment_to_index_task,
    enable_segments_to_index_task,
)

__all__ = [
    "add_annotation_to_index_task",
    "add_document_to_index_task",
    "batch_clean_document_task",
    "batch_create_segment_to_index_task",
    "batch_import_annotations_task",
    "check_upgradable_plugin_task",
    "clean_dataset_task",
    "clean_document_notify_tenant_task",
    "clean_document_task",
    "clean_embedding_cache_task",
    "clean_notion_document_task",
    "clean_unused_datasets_task",
    "deal_dataset_vector_index_task",
    "delete_account_task",
    "delete_annotation_index_task",
    "delete_segment_from_index_task",
    "disable_annotation_reply_task",
    "disable_segment_from_index_task",
    "disable_segments_from_index_task",
    "document_indexing_sync_task",
    "document_indexing_task",
    "document_indexing_update_task",
    "duplicate_document_indexing_task",
    "enable_annotation_reply_task",
    "enable_segment_to_index_task",
    "enable_segments_to_index_task",
    "mail_clean_document_notify_task",
    "normal_document_indexing_task",
    "priority_document_indexing_task",
    "process_tenant_plugin_autoupgrade_check_task",
    "process_trace_tasks",
    "prune_finished_jobs_task",
    "queue_monitor_task",
    "recover_document_indexing_task",
    "recover_stuck_documents_task",
    "remove_app_and_related_data_task",
    "remove_document_from_index_task",
    "retry_document_indexing_task",
    "send_account_deletion_verification_code",
    "send_change_mail_completed_notification_task",
    "send_change_mail_task",
    "send_deletion_success_task",
    "send_email_code_login_mail_task",
    "send_enterprise_email_task",
    "send_inner_email_task",
    "send_invite_member_mail_task",
    "send_new_owner_transfer_notify_email_task",
    "send_old_owner_transfer_notify_email_task",
    "send_owner_transfer_confirm_task",
    "send_queue_monitor_alert_task",
    "send_reset_password_mail_task",
    "send_reset_password_mail_task_when_account_not_exist",
    "sweep_trace_payloads_task",
    "sync_website_document_indexing_task",
    "update_annotation_to_index_task",
]

import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReviewEvent(_message.Message):
    __slots__ = ("brand_id", "review_id", "kind", "occurred_at")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ADDED: _ClassVar[ReviewEvent.Kind]
        UPDATED: _ClassVar[ReviewEvent.Kind]
        DELETED: _ClassVar[ReviewEvent.Kind]
    ADDED: ReviewEvent.Kind
    UPDATED: ReviewEvent.Kind
    DELETED: ReviewEvent.Kind
    BRAND_ID_FIELD_NUMBER: _ClassVar[int]
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    brand_id: str
    review_id: str
    kind: ReviewEvent.Kind
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, brand_id: _Optional[str] = ..., review_id: _Optional[str] = ..., kind: _Optional[_Union[ReviewEvent.Kind, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Notification(_message.Message):
    __slots__ = ("id", "status", "timestamp", "created_by", "seen", "content_type", "content", "position")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NEW: _ClassVar[Notification.Status]
        UPDATED: _ClassVar[Notification.Status]
        DELETED: _ClassVar[Notification.Status]
    NEW: Notification.Status
    UPDATED: Notification.Status
    DELETED: Notification.Status
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    SEEN_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: Notification.Status
    timestamp: _timestamp_pb2.Timestamp
    created_by: str
    seen: bool
    content_type: str
    content: bytes
    position: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[Notification.Status, str]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., seen: _Optional[bool] = ..., content_type: _Optional[str] = ..., content: _Optional[bytes] = ..., position: _Optional[str] = ...) -> None: ...

class BrokerNotification(_message.Message):
    __slots__ = ("user_ids", "notification", "audience_shard", "audience_shards")
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_SHARD_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_SHARDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    notification: Notification
    audience_shard: int
    audience_shards: int
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ..., notification: _Optional[_Union[Notification, _Mapping]] = ..., audience_shard: _Optional[int] = ..., audience_shards: _Optional[int] = ...) -> None: ...

class BrokerConfirmation(_message.Message):
    __slots__ = ("user_id", "id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    id: str
    def __init__(self, user_id: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class WebSocketMessage(_message.Message):
    __slots__ = ("message_id", "message_timestamp", "network_status", "notification")
    class NetworkStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OK: _ClassVar[WebSocketMessage.NetworkStatus]
        ERROR: _ClassVar[WebSocketMessage.NetworkStatus]
    OK: WebSocketMessage.NetworkStatus
    ERROR: WebSocketMessage.NetworkStatus
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    NETWORK_STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    message_timestamp: _timestamp_pb2.Timestamp
    network_status: WebSocketMessage.NetworkStatus
    notification: Notification
    def __init__(self, message_id: _Optional[str] = ..., message_timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., network_status: _Optional[_Union[WebSocketMessage.NetworkStatus, str]] = ..., notification: _Optional[_Union[Notification, _Mapping]] = ...) -> None: ...

class WebSocketConfirmation(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

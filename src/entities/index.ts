import { ApiTokenSchema } from "./api-token.entity.ts";
import { EpisodeSchema } from "./episode.entity.ts";
import { InstallationSecretSchema } from "./installation-secret.entity.ts";
import { ProcessingTaskSchema } from "./processing-task.entity.ts";
import { PublicationSchema } from "./publication.entity.ts";
import { PublishingConnectionSchema } from "./publishing-connection.entity.ts";
import { ShowSchema } from "./show.entity.ts";
import { UserSchema } from "./user.entity.ts";
import { WebhookDeliverySchema } from "./webhook-delivery.entity.ts";

export const entities = [
  UserSchema,
  ApiTokenSchema,
  ShowSchema,
  EpisodeSchema,
  ProcessingTaskSchema,
  WebhookDeliverySchema,
  InstallationSecretSchema,
  PublishingConnectionSchema,
  PublicationSchema,
];

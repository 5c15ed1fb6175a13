/**
 * The edit flow's input image: where it goes and what Storage accepts.
 *
 * The browser uploads the reference image to bucket `generation-inputs` at `<user_id>/<uuid>.<ext>` (the
 * folder policies of supabase/migrations/20261205100800_storage.sql let a user write only their own
 * folder), then inserts a job with `init_image_path` = that path; the request trigger checks that the object
 * exists and lies in the caller's folder, and picks variant `edit`. The bucket's limits below are the bucket
 * row's (`file_size_limit`, `allowed_mime_types`; a Python test compares them with the migrated database): the
 * Storage server enforces them, and checking them here first gives an error that names the field, with no
 * upload.
 */

/** The bucket of user-uploaded edit inputs. */
export const INPUTS_BUCKET = "generation-inputs";

/** The bucket row's `file_size_limit`: 10 MiB. */
export const INIT_IMAGE_MAX_BYTES = 10_485_760;

/** The bucket row's `allowed_mime_types`, with the file extension each is stored under. */
export const INIT_IMAGE_TYPES: Readonly<Record<string, string>> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
};

/** What is wrong with an input image or its path, naming the field (`init_image` or `init_image_path`). */
export interface InputProblem {
  field: "init_image" | "init_image_path";
  message: string;
}

/** Checks an image before upload: an allowed type, 1 byte to {@link INIT_IMAGE_MAX_BYTES}. */
export function checkInitImage(image: Blob): InputProblem | null {
  const allowed = Object.keys(INIT_IMAGE_TYPES);
  if (!allowed.includes(image.type)) {
    return {
      field: "init_image",
      message: `init_image: must be ${allowed.join(", ")} (got ${image.type || "no type"})`,
    };
  }
  if (image.size === 0 || image.size > INIT_IMAGE_MAX_BYTES) {
    return {
      field: "init_image",
      message:
        `init_image: must be 1 to ${INIT_IMAGE_MAX_BYTES} bytes (10 MiB) (got ${image.size} bytes)`,
    };
  }
  return null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Checks an `init_image_path` the way the request trigger does: `<userId>/<file name>`, the caller's own folder,
 * one level, a plain file name.
 */
export function checkInitImagePath(path: string, userId: string): InputProblem | null {
  const [folder, name, ...rest] = path.split("/");
  if (folder !== userId || !UUID.test(folder) || name === undefined || rest.length > 0) {
    return {
      field: "init_image_path",
      message:
        `init_image_path: must be <your user id>/<file name> in bucket ${INPUTS_BUCKET} (got ${path})`,
    };
  }
  if (!FILE_NAME.test(name)) {
    return {
      field: "init_image_path",
      message: `init_image_path: the file name must be 1 to 128 of A-Z a-z 0-9 . _ - (got ${name})`,
    };
  }
  return null;
}

/** A fresh object path for an image of this (allowed) type in the user's folder: `<userId>/<uuid>.<ext>`. */
export function initImagePath(
  userId: string,
  type: string,
  id: string = crypto.randomUUID(),
): string {
  return `${userId}/${id}.${INIT_IMAGE_TYPES[type] ?? "bin"}`;
}
